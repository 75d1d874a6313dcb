"""The staff side of the clinic app: accounts and roles, the admin UI, the article store and publishing."""
