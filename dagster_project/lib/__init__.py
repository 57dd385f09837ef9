"""Small helpers with no knowledge of the domain: file hashing, CSV cell safety, French
number formatting, progress lines, crash points for the crash-safety test. Everything may
import them; they import only the standard library and ``settings``.
"""
