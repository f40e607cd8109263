"""Keep the envelope for failures that happen outside DRF's exception handling."""

from mlaccounts.api.exceptions import error_json_response

API_PREFIX = "/api/"


class ApiErrorMiddleware:
    """Answer an exception escaping an /api/ view (e.g. while rendering) in the envelope.

    DRF's handler covers everything raised inside a view; this covers what is raised
    after it (response rendering) or by a non-DRF view mounted under /api/, which would
    otherwise reach Django's HTML error pages.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not request.path_info.startswith(API_PREFIX):
            return None
        return error_json_response(exception, request)
