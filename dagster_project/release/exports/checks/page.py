"""The checks page itself, ``controles.html``, written in the release folder at the freeze:
its head and style, the summary of the suites, the method, each suite's section
(``suites.py``), the footer.

Self-contained (inline style, no script, no external address) so that it opens from a copy
of the folder; no wall-clock time (the date shown is the release's fixed time), so the same
data give the same page, byte for byte.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib.french import format_number
from dagster_project.release.exports.checks.rows import _Datasets, read_labels
from dagster_project.release.exports.checks.suites import _status, _suite_section
from dagster_project.release.exports.checks.tables import _e

PAGE = "controles.html"
PUBLISHER = "Communauté d'agglomération de Béthune-Bruay, Artois Lys Romane"

STYLE = """\
:root { --bleu: #1f4e79; --clair: #dce6f1; --gris: #4a5563; --trait: #b8c2cc; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #1b1f24;
  background: #fff; line-height: 1.45; font-size: 15px; }
a { color: var(--bleu); }
a.evitement { position: absolute; left: -9999px; }
a.evitement:focus { left: 8px; top: 8px; background: #fff; color: var(--bleu); padding: 4px 8px; }
header.bandeau { background: var(--bleu); color: #fff; padding: 18px 32px; }
header.bandeau h1 { margin: 0 0 4px; font-size: 1.6em; }
header.bandeau p { margin: 0; }
main { padding: 16px 32px 48px; max-width: 1200px; }
h2 { color: var(--bleu); border-bottom: 2px solid var(--clair); padding-bottom: 4px;
  margin-top: 36px; font-size: 1.3em; }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
section.suite { border: 1px solid var(--trait); border-radius: 6px; padding: 4px 16px 12px;
  margin: 18px 0; }
section.suite > h2 { margin-top: 12px; }
dl.faits { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.faits dt { font-weight: bold; }
dl.faits dd { margin: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: .92em; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
th, td { border: 1px solid var(--trait); padding: 3px 8px; text-align: left; vertical-align: top; }
thead th { background: var(--clair); }
tbody th { font-weight: normal; }
td.nombre, th.nombre { text-align: right; font-variant-numeric: tabular-nums; }
.statut { display: inline-block; padding: 0 6px; border-radius: 8px; font-weight: bold;
  white-space: nowrap; }
.reussi { background: #1a7f37; color: #fff; }
.echec { background: #b42318; color: #fff; }
.avertissement { background: #fff4d6; color: #5c3c00; border: 1px solid #8a5a00; }
.neutre { background: var(--clair); color: #1b1f24; }
p.note, td.note { color: var(--gris); font-size: .92em; }
code { font-size: .92em; }
footer { color: var(--gris); font-size: .85em; padding: 16px 32px; border-top: 1px solid var(--trait); }
@media print { a.evitement { display: none; } section.suite { break-inside: avoid-page; } }
"""


METHOD = (
    "<p>Les résultats sont ceux des Data Docs et des fichiers <code>validation/*.json</code> : "
    "pour chaque suite, le dernier contrôle enregistré par le traitement "
    "(<code>audit.check_evidence</code>), ou la suite rejouée sur l'entrepôt au gel quand ce "
    "résultat manque ou que la suite a changé depuis.</p>"
    "<p>Pour une attente en écart, Great Expectations ne garde que les valeurs en écart (au "
    "plus 20) et leur position dans le tableau contrôlé, qui ne désigne aucune ligne de "
    "l'entrepôt. Les lignes sont donc retrouvées dans l'entrepôt de la publication : le tableau "
    "de la suite est préparé comme pour le contrôle (<code>dagster_project/quality/"
    "datasets.py</code>), la condition de l'attente lui est appliquée comme le fait Great "
    "Expectations, et sont gardées les lignes dont la ou les colonnes contrôlées portent une "
    "des valeurs relevées. Une attente de colonne juge chaque ligne sur ses seules valeurs : "
    "ce sont exactement les lignes en écart quand toutes les valeurs ont été relevées ; "
    "au-delà de 20 écarts, ce sont les lignes des valeurs relevées, et la page dit combien "
    "elle en retrouve sur combien.</p>"
    "<p>Libellés des indicateurs : <code>marts.dim_indicators</code> (catalogue) ; noms des "
    "communes : <code>marts.dim_communes</code> ; unités : colonne <code>unit_label</code> des "
    "marts (libellés de <code>dbt/seeds/units.csv</code>). Nombres en écriture française, "
    "avec tous leurs chiffres significatifs (jusqu'à 12).</p>"
    "<p>Données personnelles (suites RH) : seuls les décomptes sont publiés, jamais une valeur "
    "ni une ligne, comme dans les Data Docs.</p>"
)


def render_checks_page(
    con: duckdb.DuckDBPyConnection,
    items: list[dict[str, Any]],
    release_id: str,
    year: int,
    run_time: dt.datetime,
) -> str:
    """The page's HTML from the gathered results (``data_docs.gather_data_docs``)."""
    labels = read_labels(con)
    datasets = _Datasets(con)
    suites = [_suite_section(item, datasets, labels) for item in items]
    failed = [s for s in suites if s.success is False]
    blocking = [s for s in failed if s.blocking]
    not_checked = [s for s in suites if s.success is None]
    summary = [
        f"{format_number(len(suites))} suite(s) de contrôle : "
        f"{format_number(sum(1 for s in suites if s.success))} réussie(s), "
        f"{format_number(len(failed))} en écart dont {format_number(len(blocking))} "
        "bloquante(s)"
    ]
    if not_checked:
        summary.append(f"{format_number(len(not_checked))} non contrôlée(s)")
    title = f"Contrôles de la qualité — publication {release_id} (année {year})"
    body = [
        f"<p>{_e(', '.join(summary))}.</p>",
        "<p>Chaque attente en écart est suivie des lignes qu'elle concerne : indicateur, "
        "commune, année et valeur. Même contenu, en anglais et sous la forme de Great "
        'Expectations : <a href="data_docs/index.html">Data Docs</a> ; résultats bruts : '
        '<a href="validation/index.json">validation/index.json</a> ; rapport : '
        '<a href="rapport/index.html">rapport web</a>.</p>',
        '<h2 id="synthese">Synthèse</h2>',
        "<table>",
        "<caption>Suites de contrôle de la publication</caption>",
        '<thead><tr><th scope="col">Suite</th><th scope="col">Nature</th>'
        '<th scope="col">Résultat</th><th scope="col" class="nombre">Lignes contrôlées</th>'
        '<th scope="col" class="nombre">Attentes en écart</th></tr></thead>',
        "<tbody>",
    ]
    for s in suites:
        body.append(
            f'<tr><th scope="row"><a href="#suite-{_e(s.name)}">{_e(s.title)}</a><br>'
            f"<code>{_e(s.name)}</code></th>"
            f"<td>{'bloquant' if s.blocking else 'avertissement'}</td>"
            f"<td>{_status(s.success, s.blocking)}</td>"
            f'<td class="nombre">{_e(format_number(s.rows))}</td>'
            f'<td class="nombre">{_e(format_number(s.failed))} sur '
            f"{_e(format_number(s.evaluated))}</td></tr>"
        )
    body += ["</tbody></table>", '<h2 id="methode">Méthode</h2>', METHOD]
    body += [s.html for s in suites]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="fr">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>\n{STYLE}</style>",
            "</head>",
            "<body>",
            '<a class="evitement" href="#contenu">Aller au contenu</a>',
            '<header class="bandeau">',
            "<h1>Contrôles de la qualité des données</h1>",
            f"<p>Publication {_e(release_id)} · rapport d'activité {year} · {_e(PUBLISHER)}</p>",
            "</header>",
            '<main id="contenu">',
            *body,
            "</main>",
            f"<footer>Publication {_e(release_id)}. Date de référence : "
            f"{_e(run_time.strftime('%d/%m/%Y'))} (dernière livraison en vigueur de l'année). "
            "Page écrite au gel : les mêmes données donnent la même page.</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def write_checks_page(
    con: duckdb.DuckDBPyConnection,
    items: list[dict[str, Any]],
    release_id: str,
    year: int,
    folder: Path,
    run_time: dt.datetime,
) -> Path:
    """Write ``folder/controles.html``; returns its path."""
    path = Path(folder) / PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_checks_page(con, items, release_id, year, run_time), encoding="utf-8")
    return path
