// Suit un dépôt accepté jusqu'à la copie publiée : interroge /depots/<id>/suivi toutes les
// 3 secondes et met à jour la zone annoncée (aria-live). Sans script, le lien « Actualiser » suffit.
(function () {
  var zone = document.getElementById("suivi");
  if (!zone || zone.getAttribute("data-termine") === "oui") { return; }
  var url = zone.getAttribute("data-url");
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        if (zone.textContent !== state.etape) { zone.textContent = state.etape; }
        if (state.termine) { window.location.reload(); return; }
        window.setTimeout(poll, 3000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 3000);
})();
