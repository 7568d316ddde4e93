"""The review page: people label escalated pairs with the packshot in front of them.

Served standalone (`raer review serve`) and by the LangGraph server at /review (a mount in
web/server_http.py). See web/review/app.py for the routes and the rules it enforces.
"""
