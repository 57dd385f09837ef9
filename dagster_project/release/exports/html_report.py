"""``rapport/``: the release as a static French web report that opens from disk.

``index.html`` (summary and links), one page per priority (a section per objective, a bar
chart of the agglomeration values across the years for every indicator with a history, a
commune table for every indicator with a breakdown) and ``communes.html`` (one table per
commune). Charts are inline SVG written here; the pages use no script, no web font and no
external address, so they render the same offline, printed or archived.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from dagster_project.release.exports.common import (
    PRIORITY_TITLES,
    PUBLISHER,
    ReleaseData,
    Row,
    format_change_pct,
    format_date,
    format_number,
    format_value,
    is_missing,
    unit_fr,
)

FOLDER = "rapport"
PAGE_NAMES = {
    "P1": "priorite-1.html",
    "P2": "priorite-2.html",
    "P3": "priorite-3.html",
    "P4": "priorite-4.html",
    "APPUI": "appui.html",
    "TERRITOIRE": "territoire.html",
    "AUTRES": "autres.html",
}
COMMUNES_PAGE = "communes.html"

STYLE = """\
:root { --bleu: #1f4e79; --clair: #dce6f1; --gris: #5f6b7a; --trait: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #1b1f24;
  background: #fff; line-height: 1.45; font-size: 15px; }
header.bandeau { background: var(--bleu); color: #fff; padding: 18px 32px; }
header.bandeau h1 { margin: 0 0 4px; font-size: 1.6em; }
header.bandeau p { margin: 0; opacity: .9; }
nav.menu { background: var(--clair); padding: 8px 32px; font-size: .95em; }
nav.menu a { color: var(--bleu); margin-right: 16px; text-decoration: none; }
nav.menu a.actif { font-weight: bold; text-decoration: underline; }
main { padding: 16px 32px 48px; max-width: 1200px; }
h2 { color: var(--bleu); border-bottom: 2px solid var(--clair); padding-bottom: 4px;
  margin-top: 36px; font-size: 1.3em; }
section.indicateur { border: 1px solid var(--trait); border-radius: 6px; padding: 12px 16px;
  margin: 14px 0; display: grid; grid-template-columns: minmax(0, 1fr) 340px; gap: 8px 24px; }
section.indicateur > .texte { grid-column: 1; }
section.indicateur > svg { grid-column: 2; grid-row: 1 / span 2; }
section.indicateur > details { grid-column: 1 / span 2; }
section.indicateur h3 { margin: 0 0 6px; font-size: 1.05em; }
p.chiffre { margin: 0 0 4px; }
p.chiffre strong { font-size: 1.35em; color: var(--bleu); }
p.detail, p.commentaire { margin: 2px 0; color: var(--gris); font-size: .92em; }
span.hausse { color: #1a7f37; } span.baisse { color: #b42318; }
span.atypique { background: #fff4d6; color: #6b4200; padding: 0 4px; border-radius: 4px; }
span.statut { display: inline-block; padding: 0 6px; border-radius: 8px; background: var(--clair);
  font-size: .85em; }
table { border-collapse: collapse; margin: 8px 0; font-size: .9em; }
th, td { border: 1px solid var(--trait); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--clair); }
td.nombre, th.nombre { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
details summary { cursor: pointer; color: var(--bleu); }
ul.communes { columns: 4; padding-left: 18px; font-size: .9em; }
footer { color: var(--gris); font-size: .85em; padding: 16px 32px; border-top: 1px solid var(--trait); }
svg.graphique text { font-family: "DejaVu Sans", Arial, sans-serif; }
@media print { nav.menu { display: none; } section.indicateur { break-inside: avoid; } }
"""


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _signed_class(value) -> str:
    if is_missing(value) or value == 0:
        return ""
    return "hausse" if value > 0 else "baisse"


# --------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------


def _compact(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{format_number(value / 1e9, 1)} Md"
    if magnitude >= 1e6:
        return f"{format_number(value / 1e6, 1)} M"
    if magnitude >= 1e5:
        return f"{format_number(value / 1e3, 0)} k"
    return format_number(value, 1 if magnitude < 100 else 0)


def bar_chart(
    indicator_id: str, label: str, unit: str | None, points: list[tuple[int, float]]
) -> str:
    """An inline SVG bar chart of the values across the years (the last year highlighted)."""
    width, height = 340, 170
    left, right, top, bottom = 12, 12, 22, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v in points]
    low, high = min(0.0, *values), max(0.0, *values)
    if high == low:
        high = low + 1.0

    def y(v: float) -> float:
        return top + (high - v) / (high - low) * plot_h

    slot = plot_w / len(points)
    bar = min(56.0, slot * 0.6)
    described = " ; ".join(f"{year} : {format_value(v, unit)}" for year, v in points)
    title = f"{label} — {described}"
    parts = [
        f'<svg class="graphique" data-indicateur="{_e(indicator_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    zero = y(0.0)
    for i, (year, v) in enumerate(points):
        x = left + slot * i + (slot - bar) / 2
        y0, y1 = sorted((y(v), zero))
        colour = "#1f4e79" if i == len(points) - 1 else "#8eaadb"
        parts.append(
            f'<rect x="{x:.1f}" y="{y0:.1f}" width="{bar:.1f}" height="{max(y1 - y0, 0.5):.1f}" '
            f'fill="{colour}"/>'
        )
        label_y = y0 - 5 if v >= 0 else y1 + 13
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{label_y:.1f}" text-anchor="middle" '
            f'font-size="11" fill="#1b1f24">{_e(_compact(v))}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16:.1f}" text-anchor="middle" '
            f'font-size="12" fill="#5f6b7a">{year}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{zero:.1f}" x2="{width - right}" y2="{zero:.1f}" '
        'stroke="#5f6b7a" stroke-width="1"/>'
    )
    unit_label = unit_fr(unit)
    if unit_label:
        parts.append(
            f'<text x="{width - right}" y="{height - 6}" text-anchor="end" font-size="10" '
            f'fill="#5f6b7a">{_e(unit_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def _page(data: ReleaseData, title: str, active: str, body: list[str]) -> str:
    current = ' class="actif"'
    menu = [f'<a href="index.html"{current if active == "index" else ""}>Sommaire</a>']
    for priority in data.priorities:
        name = PAGE_NAMES[priority]
        cls = ' class="actif"' if active == priority else ""
        menu.append(f'<a href="{name}"{cls}>{_e(PRIORITY_TITLES[priority])}</a>')
    if data.has_communes():
        cls = ' class="actif"' if active == "communes" else ""
        menu.append(f'<a href="{COMMUNES_PAGE}"{cls}>Communes</a>')
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="fr">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)} — Rapport d'activité {data.year} ({_e(data.release_id)})</title>",
            '<link rel="stylesheet" href="style.css">',
            "</head>",
            "<body>",
            '<header class="bandeau">',
            f"<h1>{_e(title)}</h1>",
            f"<p>Rapport d'activité {data.year} · {_e(PUBLISHER)} · publication "
            f"{_e(data.release_id)}</p>",
            "</header>",
            f'<nav class="menu">{"".join(menu)}</nav>',
            "<main>",
            *body,
            "</main>",
            f"<footer>Publication {_e(data.release_id)} : valeurs figées de l'année {data.year}. "
            "Les fichiers de données et les preuves de contrôle sont dans le dossier de la "
            "publication.</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _figure_line(r: Row) -> str:
    parts = [f"<strong>{_e(format_value(r.value, r.unit))}</strong>"]
    if r.as_of_date is not None:
        parts.append(f" au {_e(format_date(r.as_of_date))}")
    if r.plausibility_note:
        parts.append(' <span class="atypique">valeur atypique, confirmée</span>')
    return f'<p class="chiffre">{"".join(parts)}</p>'


def _detail_line(r: Row, year: int) -> str:
    bits = []
    if r.previous_year_value is not None:
        bits.append(f"{year - 1} : {_e(format_value(r.previous_year_value, r.unit))}")
    if r.change_pct is not None:
        cls = "atypique" if r.plausibility_note else _signed_class(r.change_pct)
        bits.append(f'évolution : <span class="{cls}">{_e(format_change_pct(r.change_pct))}</span>')
    elif r.change is not None and r.previous_year_value is not None:
        sign = "+" if r.change > 0 else ""
        bits.append(f"évolution : {sign}{_e(format_number(r.change))}")
    if r.target_value is not None:
        bits.append(f"cible : {_e(format_value(r.target_value, r.unit))}")
    if r.review_status:
        bits.append(f'revue : <span class="statut">{_e(r.review_status)}</span>')
    if r.plausibility_note:  # never a plain figure: the jump and who confirmed it, and why
        confirmed = f" — confirmée : {_e(r.review_comment)}" if r.review_comment else ""
        bits.append(f'<span class="atypique">{_e(r.plausibility_note)}{confirmed}</span>')
    return f'<p class="detail">{" · ".join(bits)}</p>' if bits else ""


def _commune_table(rows: list[Row], year: int) -> str:
    lines = [
        f"<details><summary>Détail par commune ({len(rows)} communes)</summary>",
        "<table><thead><tr><th>Commune</th><th>Code INSEE</th>"
        f'<th class="nombre">{year}</th><th class="nombre">{year - 1}</th>'
        '<th class="nombre">Évolution</th></tr></thead><tbody>',
    ]
    for r in rows:
        lines.append(
            f"<tr><td>{_e(r.commune_name)}</td><td>{_e(r.code_insee)}</td>"
            f'<td class="nombre">{_e(format_value(r.value, r.unit))}'
            + (' <span class="atypique">atypique</span>' if r.plausibility_note else "")
            + "</td>"
            f'<td class="nombre">{_e(format_value(r.previous_year_value, r.unit))}</td>'
            f'<td class="nombre">{_e(format_change_pct(r.change_pct))}</td></tr>'
        )
    lines.append("</tbody></table></details>")
    return "\n".join(lines)


def _priority_page(data: ReleaseData, priority: str) -> tuple[str, int]:
    rows = data.agglomeration(priority)
    body: list[str] = []
    charts = 0
    if not rows:
        body.append("<p>Aucune valeur pour cette priorité dans la publication.</p>")
    objective = None
    for r in rows:
        if r.objective != objective:
            objective = r.objective
            body.append(f"<h2>{_e(objective or 'Sans objectif')}</h2>")
        body.append(f'<section class="indicateur" id="{_e(r.indicator_id)}">')
        body.append('<div class="texte">')
        body.append(f"<h3>{_e(r.label_fr)}</h3>")
        body.append(_figure_line(r))
        body.append(_detail_line(r, data.year))
        if r.comment_text:
            body.append(f'<p class="commentaire">{_e(r.comment_text)}</p>')
        body.append("</div>")
        points = data.history.get(r.indicator_id)
        if points:
            body.append(bar_chart(r.indicator_id, r.label_fr, r.unit, points))
            charts += 1
        communes = data.commune_rows(r.indicator_id)
        if communes:
            body.append(_commune_table(communes, data.year))
        body.append("</section>")
    return _page(data, PRIORITY_TITLES[priority], priority, body), charts


def _communes_page(data: ReleaseData) -> str:
    by_commune: dict[str, list[Row]] = {}
    names: dict[str, str] = {}
    for r in data.communes():
        by_commune.setdefault(r.code_insee, []).append(r)
        names[r.code_insee] = r.commune_name
    order = sorted(by_commune, key=lambda c: (names[c].casefold(), c))
    body = [
        "<p>Valeurs par commune des indicateurs qui en ont une ventilation, pour l'année "
        f"{data.year}.</p>",
        '<ul class="communes">',
        *(f'<li><a href="#c{_e(c)}">{_e(names[c])}</a></li>' for c in order),
        "</ul>",
    ]
    for code in order:
        body.append(f'<h2 id="c{_e(code)}">{_e(names[code])} <small>({_e(code)})</small></h2>')
        body.append(
            "<table><thead><tr><th>Priorité</th><th>Indicateur</th>"
            f'<th class="nombre">{data.year}</th><th class="nombre">{data.year - 1}</th>'
            '<th class="nombre">Évolution</th></tr></thead><tbody>'
        )
        for r in by_commune[code]:
            body.append(
                f"<tr><td>{_e(PRIORITY_TITLES.get(r.priority, r.priority))}</td>"
                f"<td>{_e(r.label_fr)}</td>"
                f'<td class="nombre">{_e(format_value(r.value, r.unit))}'
                + (' <span class="atypique">atypique</span>' if r.plausibility_note else "")
                + "</td>"
                f'<td class="nombre">{_e(format_value(r.previous_year_value, r.unit))}</td>'
                f'<td class="nombre">{_e(format_change_pct(r.change_pct))}</td></tr>'
            )
        body.append("</tbody></table>")
    return _page(data, "Valeurs par commune", "communes", body)


def _index_page(data: ReleaseData, charts: dict[str, int], files: list[tuple[str, str]]) -> str:
    agglo = sum(1 for r in data.rows if r.code_insee is None)
    body = [
        f"<p>Cette publication ({_e(data.release_id)}) fige {len(data.rows)} valeurs "
        f"d'indicateurs pour {data.year} : {agglo} pour l'agglomération et "
        f"{len(data.rows) - agglo} par commune.</p>",
        "<h2>Priorités</h2>",
        '<table><thead><tr><th>Priorité</th><th class="nombre">Indicateurs</th>'
        '<th class="nombre">Avec historique</th><th class="nombre">Ventilés par commune</th>'
        "</tr></thead><tbody>",
    ]
    for priority in data.priorities:
        rows = data.agglomeration(priority)
        breakdowns = len({r.indicator_id for r in data.communes(priority)})
        body.append(
            f'<tr><td><a href="{PAGE_NAMES[priority]}">{_e(PRIORITY_TITLES[priority])}</a></td>'
            f'<td class="nombre">{len(rows)}</td><td class="nombre">{charts.get(priority, 0)}</td>'
            f'<td class="nombre">{breakdowns}</td></tr>'
        )
    body.append("</tbody></table>")
    if data.has_communes():
        body.append(f'<p><a href="{COMMUNES_PAGE}">Valeurs par commune</a></p>')
    body.append("<h2>Fichiers de la publication</h2><ul>")
    for href, text in files:
        body.append(f'<li><a href="{_e(href)}">{_e(text)}</a></li>')
    body.append("</ul>")
    return _page(data, f"Rapport d'activité {data.year}", "index", body)


def write_html_report(data: ReleaseData, folder: Path, files: list[tuple[str, str]]) -> list[Path]:
    """Write ``folder/rapport/``; ``files`` are (relative link from the release folder, text)."""
    out = folder / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    written = []
    style = out / "style.css"
    style.write_text(STYLE, encoding="utf-8")
    written.append(style)
    charts: dict[str, int] = {}
    for priority in data.priorities:
        html, count = _priority_page(data, priority)
        charts[priority] = count
        path = out / PAGE_NAMES[priority]
        path.write_text(html, encoding="utf-8")
        written.append(path)
    if data.has_communes():
        path = out / COMMUNES_PAGE
        path.write_text(_communes_page(data), encoding="utf-8")
        written.append(path)
    links = [(f"../{href}", text) for href, text in files]
    index = out / "index.html"
    index.write_text(_index_page(data, charts, links), encoding="utf-8")
    written.append(index)
    return sorted(written)
