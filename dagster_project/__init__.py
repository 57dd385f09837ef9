"""Entrepôt d'indicateurs (KPI warehouse) of the Communauté d'agglomération de Béthune-Bruay."""
