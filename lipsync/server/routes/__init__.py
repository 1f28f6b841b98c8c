"""The server's routes, one concern per module; ``app.py`` includes them."""
