"""The warehouse itself: who may open the build database and when (``access``), the copy
analysts read (``publication``) and its verification (``publication_check``), the PostgreSQL
target (``postgres``) and small helpers on its relations."""
