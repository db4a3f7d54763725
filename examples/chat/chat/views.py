import asyncio
import time

from django.http import HttpResponse, StreamingHttpResponse

from chat.consumers import RELEASE

# Seconds between two chunks of the stream.
PAUSE = 0.5


def home(request):
    return HttpResponse(f"<!doctype html><title>chat</title><h1>{RELEASE}</h1>")


def health(request):
    return HttpResponse("ok", content_type="text/plain")


async def stream(request):
    """Server-sent events: each chunk says when it was made, a pause apart."""

    async def events():
        for number in range(5):
            if number:
                await asyncio.sleep(PAUSE)
            yield f"data: {number} {time.time():.3f}\n\n"

    return StreamingHttpResponse(events(), content_type="text/event-stream")
