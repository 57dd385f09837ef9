"""One section of the checks page (``controles.html``) per suite: what it checks, blocking or
warning, its result, then each expectation with its French description and result, and
under each failed expectation the rows concerned (``rows.py``, ``tables.py``).

Expectations come in the suite's order (those a result holds beyond the suite after them,
sorted), so the page does not depend on the order GX returned them in. A personal suite
(HR) shows counts only, as in the Data Docs: its rows are never looked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster_project.lib.french import format_number
from dagster_project.quality.evidence import clean_result
from dagster_project.release.exports.checks.rows import Found, Labels, _Datasets, matching_rows
from dagster_project.release.exports.checks.tables import MAX_ROWS, _e, rows_table, values_table
from dagster_project.release.exports.checks.values import _percent, cell_text


def _status(success: bool | None, blocking: bool = True) -> str:
    if success is None:
        return '<span class="statut neutre">non contrôlée</span>'
    if success:
        return '<span class="statut reussi">réussie</span>'
    if not blocking:
        return '<span class="statut avertissement">en écart (avertissement)</span>'
    return '<span class="statut echec">en échec</span>'


def _severity(blocking: bool) -> str:
    if blocking:
        return "bloquant : un échec refuse le gel"
    return "avertissement : n'empêche pas le gel"


def suite_title(name: str, meta: dict) -> str:
    """A French title: the source's title for a contract's suite, what is checked otherwise."""
    if meta.get("title_fr"):
        return str(meta["title_fr"])
    dataset = meta.get("dataset") or {}
    table = meta.get("table") or dataset.get("table") or "/".join(meta.get("asset") or [])
    kind = dataset.get("kind")
    description = str(meta.get("description_fr") or "")
    if kind == "raw_in_force" and " : " in description:
        return f"{description.split(' : ', 1)[0]} ({table})"
    if kind == "commune_completeness":
        return f"Complétude communale de {table}"
    if kind == "yoy_changes":
        return f"Évolutions sur un an de {table}"
    return f"Valeurs de {table}" if table else name


def _ordered_results(suite: dict, raw: dict | None) -> list[tuple[dict, dict | None]]:
    """(expectation config, its result or None) in the suite's order."""
    by_id: dict[str, dict] = {}
    extra: list[dict] = []
    for item in (raw or {}).get("results") or []:
        config = item.get("expectation_config") or {}
        if config.get("id") and config["id"] not in by_id:
            by_id[str(config["id"])] = item
        else:
            extra.append(item)
    pairs: list[tuple[dict, dict | None]] = []
    for expectation in suite.get("expectations") or []:
        item = by_id.pop(str(expectation.get("id")), None)
        config = (item or {}).get("expectation_config") or expectation
        pairs.append((config, item))
    rest = [*by_id.values(), *extra]
    rest.sort(key=lambda i: (str((i.get("expectation_config") or {}).get("type")), repr(i)))
    pairs += [(i.get("expectation_config") or {}, i) for i in rest]
    return pairs


def _count_text(result: dict) -> str:
    parts = []
    if "unexpected_count" in result:
        count = int(result.get("unexpected_count") or 0)
        total = result.get("element_count")
        text = f"{format_number(count)} ligne(s) en écart"
        if total is not None:
            text += f" sur {format_number(int(total))}"
        if result.get("unexpected_percent") is not None and count:
            text += f" ({_percent(result['unexpected_percent'])})"
        parts.append(text)
    if result.get("missing_count"):
        parts.append(f"{format_number(int(result['missing_count']))} vide(s) non jugée(s)")
    return ", ".join(parts)


def _detail(config: dict, item: dict | None, personal: bool) -> str:
    if item is None:
        return "non évaluée"
    exception = item.get("exception_info") or {}
    if isinstance(exception, dict) and exception.get("raised_exception"):
        if personal:
            return "contrôle impossible (erreur d'évaluation)"
        message = str(exception.get("exception_message") or "erreur").splitlines()[:1]
        return f"contrôle impossible ({message[0] if message else 'erreur'})"
    result = item.get("result") or {}
    text = _count_text(result)
    if not text and "observed_value" in result:
        kind = str(config.get("type") or "")
        if not personal or kind.startswith(("expect_table_", "expect_column_to_exist")):
            text = f"observé : {cell_text(result['observed_value'])}"
    if not text and config.get("type") == "expect_column_to_exist" and not item.get("success"):
        text = "colonne absente"
    return text


@dataclass
class _SuitePage:
    name: str
    title: str
    success: bool | None
    blocking: bool
    rows: int
    failed: int
    evaluated: int
    html: str


def _failed_rows_html(
    name: str,
    meta: dict,
    config: dict,
    result: dict,
    datasets: _Datasets,
    labels: Labels,
    anchor: str,
    description: str,
) -> str:
    count = int(result.get("unexpected_count") or 0)
    parts = [f'<h3 id="{_e(anchor)}">Lignes en écart : {_e(description)}</h3>']
    df, why = datasets.get(name, meta.get("dataset") or {})
    found = matching_rows(df, config, result) if df is not None else Found(None, why=why)
    if found.rows is None:
        parts.append(
            f'<p class="note">Lignes non retrouvées dans l\'entrepôt ({_e(found.why)}) : '
            "voici les valeurs en écart relevées par le contrôle.</p>"
        )
        parts.append(values_table(result, "Valeurs en écart relevées par le contrôle"))
        return "\n".join(parts)
    n = len(found.rows)
    said = f"{format_number(n)} ligne(s) en écart retrouvée(s) dans l'entrepôt"
    if count and n != count:
        said += f" pour {format_number(count)} ligne(s) en écart au contrôle"
        if not found.complete:
            said += (
                " : le contrôle n'a relevé que les premières valeurs en écart, seules "
                "leurs lignes sont retrouvées"
            )
        elif n < count:
            said += " : l'entrepôt a changé depuis le contrôle"
    if n > MAX_ROWS:
        said += f" ; les {format_number(MAX_ROWS)} premières sont montrées"
    parts.append(f'<p class="note">{_e(said)}.</p>')
    if n:
        parts.append(rows_table(found, config, meta, labels, "Lignes concernées"))
    else:
        parts.append(values_table(result, "Valeurs en écart relevées par le contrôle"))
    return "\n".join(parts)


def _suite_section(item: dict, datasets: _Datasets, labels: Labels) -> _SuitePage:
    suite = item["suite"]
    name = str(suite.get("name") or item["entry"]["suite"])
    meta = suite.get("meta") or {}
    personal = bool(item.get("personal"))
    blocking = bool(meta.get("blocking", True))
    raw = item.get("raw")
    if raw is not None and personal:
        raw = clean_result(raw, True)  # counts only (already so; cleaning again changes nothing)
    success = None if raw is None else bool(raw.get("success"))
    rows = int(item.get("rows") or 0) if raw is not None else 0
    title = suite_title(name, meta)
    asset = "/".join(meta.get("asset") or []) if isinstance(meta.get("asset"), list) else ""
    section = f"suite-{name}"
    html = [
        f'<section class="suite" id="{_e(section)}" aria-labelledby="{_e(section)}-titre">',
        f'<h2 id="{_e(section)}-titre">{_e(title)}</h2>',
        f"<p>{_e(meta.get('description_fr') or '')}</p>",
        '<dl class="faits">',
        f"<dt>Suite</dt><dd><code>{_e(name)}</code></dd>",
        f"<dt>Asset contrôlé</dt><dd><code>{_e(asset or meta.get('table') or '')}</code></dd>",
        f"<dt>Nature</dt><dd>{_e(_severity(blocking))}</dd>",
        f"<dt>Résultat</dt><dd>{_status(success, blocking)}</dd>",
        f"<dt>Lignes contrôlées</dt><dd>{_e(format_number(rows))}</dd>",
    ]
    if personal:
        html.append(
            "<dt>Données personnelles</dt><dd>oui : décomptes seulement, aucune valeur "
            "ni ligne n'est montrée</dd>"
        )
    if raw is not None:
        html.append(
            f'<dt>Résultat complet</dt><dd><a href="validation/{_e(name)}.json">'
            f"validation/{_e(name)}.json</a> · "
            '<a href="data_docs/index.html">Data Docs</a></dd>'
        )
    html.append("</dl>")
    if raw is None:
        html.append(
            f"<p><strong>Contrôle impossible :</strong> {_e(item.get('skipped') or '')}</p>"
        )
    pairs = _ordered_results(suite, raw)
    failed_blocks: list[str] = []
    rows_html = []
    failed = evaluated = 0
    for n, (config, result_item) in enumerate(pairs, start=1):
        description = str(
            (config.get("meta") or {}).get("description_fr") or config.get("type") or "attente"
        )
        ok = None if result_item is None else bool(result_item.get("success"))
        if ok is not None:
            evaluated += 1
        detail = _e(_detail(config, result_item, personal))
        anchor = f"{section}-ecart-{n}"
        if ok is False:
            failed += 1
            result = result_item.get("result") or {}
            if not personal and "unexpected_count" in result:
                detail += f' — <a href="#{_e(anchor)}">lignes en écart</a>'
                failed_blocks.append(
                    _failed_rows_html(
                        name, meta, config, result, datasets, labels, anchor, description
                    )
                )
        kind = _e(config.get("type") or "")
        rows_html.append(
            f'<tr><td class="nombre">{n}</td>'
            f'<th scope="row">{_e(description)}<br><code>{kind}</code></th>'
            f"<td>{_status(ok, blocking)}</td><td>{detail}</td></tr>"
        )
    html += [
        "<table>",
        f"<caption>Attentes de la suite {_e(name)}</caption>",
        '<thead><tr><th scope="col" class="nombre">N°</th><th scope="col">Attente</th>'
        '<th scope="col">Résultat</th><th scope="col">Détail</th></tr></thead>',
        "<tbody>",
        *rows_html,
        "</tbody></table>",
        *failed_blocks,
        "</section>",
    ]
    return _SuitePage(name, title, success, blocking, rows, failed, evaluated, "\n".join(html))
