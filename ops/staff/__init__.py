"""The staff surface: the personal-data and administrator API, sign-in and the route guard (auth), and
the server-rendered web app (web)."""
