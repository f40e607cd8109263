"""Date formats that replace Django's for a language (settings.FORMAT_MODULE_PATH).

Only English: Django's are American ("12/01/2026 5:12 p.m."), ambiguous for the sellers of
every other country. Portuguese and Spanish keep Django's (day/month/year, 24 hours).
"""
