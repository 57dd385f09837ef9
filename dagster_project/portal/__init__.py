"""The collection portal (`kpi portal`): the departments deliver their workbooks through the
web, the steering department follows the campaign, the auditors read the releases.

Server-rendered French pages (Starlette, Jinja2, uvicorn), no network beyond the server.
The portal never writes the build warehouse itself: an accepted file is written into
``sources/`` and the pipeline is asked to run (``runner``); its own state (accounts,
sessions, uploads, the journal of who did what) is a small SQLite file beside the
warehouse (``store``). See docs/portal.md.
"""
