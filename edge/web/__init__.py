"""The live view (`edge run --web`): access, what the page shows, the annotated stream and the server, with
the page's static files in static/."""
