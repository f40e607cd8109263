"""Other apps' messages that our own catalogs (locale/) translate.

Our catalog is read after every app's (settings.LOCALE_PATHS), so its entry for a msgid wins
over the app's: it fixes a wording (allauth's pt-BR "Lembrar de Mim") or supplies a language
the app lacks (django-celery-beat has no pt-BR). makemessages extracts only our code, so the
msgids are listed here, marked with gettext_noop, to stay in the catalogs. Nothing imports
this module. (celery-beat's "Task Name" is not marked for translation: it stays English.)
"""

from django.utils.translation import gettext_noop

ALLAUTH = [
    gettext_noop("Remember Me"),
]

# What the admin shows of django-celery-beat: the app, its models, the fields of its lists,
# filters and forms, its fieldsets and actions, and the words of an interval ("every 60 seconds").
CELERY_BEAT = [
    gettext_noop("Periodic Tasks"),
    gettext_noop("periodic task"),
    gettext_noop("periodic tasks"),
    gettext_noop("interval"),
    gettext_noop("intervals"),
    gettext_noop("crontab"),
    gettext_noop("crontabs"),
    gettext_noop("solar event"),
    gettext_noop("solar events"),
    gettext_noop("clocked"),
    gettext_noop("Name"),
    gettext_noop("Description"),
    gettext_noop("Interval Schedule"),
    gettext_noop("Crontab Schedule"),
    gettext_noop("Solar Schedule"),
    gettext_noop("Clocked Schedule"),
    gettext_noop("Start Datetime"),
    gettext_noop("Last Run Datetime"),
    gettext_noop("One-off Task"),
    gettext_noop("Total Run Count"),
    gettext_noop("Last Modified"),
    gettext_noop("Expires Datetime"),
    gettext_noop("Expires timedelta with seconds"),
    gettext_noop("Positional Arguments"),
    gettext_noop("Keyword Arguments"),
    gettext_noop("Queue Override"),
    gettext_noop("Exchange"),
    gettext_noop("Routing Key"),
    gettext_noop("AMQP Message Headers"),
    gettext_noop("Priority"),
    gettext_noop("Number of Periods"),
    gettext_noop("Interval Period"),
    gettext_noop("Clock Time"),
    gettext_noop("Minute(s)"),
    gettext_noop("Hour(s)"),
    gettext_noop("Day(s) Of The Month"),
    gettext_noop("Month(s) Of The Year"),
    gettext_noop("Day(s) Of The Week"),
    gettext_noop("Cron Timezone"),
    gettext_noop("Solar Event"),
    gettext_noop("Latitude"),
    gettext_noop("Longitude"),
    gettext_noop("Task (registered)"),
    gettext_noop("Task (custom)"),
    gettext_noop("Schedule"),
    gettext_noop("Arguments"),
    gettext_noop("Execution Options"),
    gettext_noop("Enable selected tasks"),
    gettext_noop("Disable selected tasks"),
    gettext_noop("Toggle activity of selected tasks"),
    gettext_noop("Run selected tasks"),
    gettext_noop("Days"),
    gettext_noop("Hours"),
    gettext_noop("Minutes"),
    gettext_noop("Seconds"),
    gettext_noop("Microseconds"),
    gettext_noop("Day"),
    gettext_noop("Hour"),
    gettext_noop("Minute"),
    gettext_noop("Second"),
    gettext_noop("Microsecond"),
    gettext_noop("every {}"),
    gettext_noop("every {} {}"),
]
