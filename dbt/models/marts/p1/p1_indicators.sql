-- Indicateurs de la priorité P1, lisibles (voir la macro priority_indicators).
{{ priority_indicators('P1') }}
