"""The ASGI app as servers import it: settings from the environment."""

from api.app import create_app

app = create_app()
