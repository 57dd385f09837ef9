"""The warehouse itself: who may open the build database and when (``access``), the copy
analysts read (``publication``), the PostgreSQL target (``postgres``) and small helpers on
its relations."""
