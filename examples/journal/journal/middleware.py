"""Counts visits in the cache: every request needs the cache."""

from django.core.cache import cache


def visits(get_response):
    def middleware(request):
        cache.add("visits", 0)
        request.visits = cache.incr("visits")
        return get_response(request)

    return middleware
