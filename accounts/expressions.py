"""SQL expressions the services and the selectors both build."""

from datetime import timedelta

from django.db.models import DateTimeField, DurationField, Expression, ExpressionWrapper, IntegerField, Value


def seconds_after(moment: Expression, seconds: Expression) -> ExpressionWrapper:
    """`moment` + `seconds` (integer expressions, e.g. a column) as a datetime, in SQL."""
    # Typed as a plain integer: SQLite's duration arithmetic refuses a PositiveIntegerField.
    seconds = ExpressionWrapper(seconds, output_field=IntegerField())
    interval = ExpressionWrapper(seconds * Value(timedelta(seconds=1)), output_field=DurationField())
    return ExpressionWrapper(moment + interval, output_field=DateTimeField())
