"""Reversing a revision: the schema state it starts from, its ops and raw SQL reversed, and the
generated ``downgrade()`` written back into the revision file."""
