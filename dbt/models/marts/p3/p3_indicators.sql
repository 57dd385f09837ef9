-- Indicateurs de la priorité P3, lisibles (voir la macro priority_indicators).
{{ priority_indicators('P3') }}
