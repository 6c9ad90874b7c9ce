"""The HTTP API: routes, authentication, error shapes, streamed responses and the status page."""
