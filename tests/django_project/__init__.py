"""A minimal Django project whose tasks run on glidemq (no database)."""
