-- Indicateurs de la priorité APPUI, lisibles (voir la macro priority_indicators).
{{ priority_indicators('APPUI') }}
