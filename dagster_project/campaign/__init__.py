"""The yearly collection campaign: the campaign file (``plan``), the status of every expected
delivery (``status``, presented by ``status_report``), reminders to the departments
(``reminders``, sent by ``mail``), blank templates (``templates``) and the next year's
rollover (``rollover``); ``dates`` is the campaign clock and its French dates.
"""
