"""OPTIONS answers in the envelope too (a module of its own: DRF imports it while defining APIView)."""

from rest_framework.metadata import SimpleMetadata


class EnvelopeMetadata(SimpleMetadata):
    def determine_metadata(self, request, view):
        return {"success": True, "data": super().determine_metadata(request, view)}
