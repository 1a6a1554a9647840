"""What every HTTP surface shares (the edge and the staff surface alike): the client's address as
seen through trusted proxies, and the failure limits that protect credentials. Pure."""
