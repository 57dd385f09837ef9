-- Indicateurs de la priorité P2, lisibles (voir la macro priority_indicators).
{{ priority_indicators('P2') }}
