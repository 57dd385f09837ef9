-- Indicateurs de la priorité TERRITOIRE, lisibles (voir la macro priority_indicators).
{{ priority_indicators('TERRITOIRE') }}
