"""All Dagster wiring: definitions, resources, assets, asset checks, sensors, schedules and the
Dagster instance the project writes. Domain packages never import it; the CLI does.
"""
