-- Indicateurs de la priorité P4, lisibles (voir la macro priority_indicators).
{{ priority_indicators('P4') }}
