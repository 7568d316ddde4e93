"""The web doors: the LangGraph server's HTTP guards and the review page."""
