"""English dates day first with the month in letters and a 24-hour clock: "1 Dec 2026, 17:12".

Formats not set here (the input formats among them) stay Django's own for English.
"""

DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j M Y, H:i"
MONTH_DAY_FORMAT = "j F"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
