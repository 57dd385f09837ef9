"""The warehouse itself: its own tables, declared once (``schema``), who may open the build
database and when (``access``, ``build``), the copy analysts read (``publication``, written by
``published_copy``, switched by ``publication_links``) and its verification
(``publication_check``), the PostgreSQL target (``postgres``) and small helpers on its
relations (``relations``)."""
