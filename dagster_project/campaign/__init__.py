"""The yearly collection campaign: the campaign file, the status of every expected delivery,
reminders to the departments, blank templates and the next year's rollover.
"""
