/* The /viewer page: an instance's XYZ tiles on a Leaflet map, a date selector and the records' footprints.
 *
 * Every API request carries the token in the Authorization header (tiles are fetched, not linked, so the
 * token never appears in a URL the server logs). The token comes from the form, or once from ?token=,
 * which is then removed from the address bar; it is kept in sessionStorage (this tab only).
 * Everything is loaded from this server: no basemap, no script from elsewhere.
 */
(function () {
  "use strict";

  const form = document.getElementById("controls");
  const fields = {
    instance: document.getElementById("instance"),
    token: document.getElementById("token"),
    date: document.getElementById("date"),
    bands: document.getElementById("bands"),
    vmin: document.getElementById("vmin"),
    vmax: document.getElementById("vmax"),
  };
  const statusLine = document.getElementById("status");

  // what tests and curious users can look at
  // loads: how many times every visible tile has arrived (Leaflet's "load"), loading: tiles on their way
  const state = { instance: "", records: [], dates: [], tilesLoaded: 0, tileErrors: 0, lastTileUrl: "", loads: 0,
                  loading: false };
  window.geocubeViewer = state;

  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  // --- token and instance from the address, the token then taken out of it ---------------------------
  const query = new URLSearchParams(window.location.search);
  if (query.has("token")) {
    sessionStorage.setItem("geocube-token", query.get("token"));
    query.delete("token");
    const rest = query.toString();
    history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : "") + window.location.hash);
  }
  fields.token.value = sessionStorage.getItem("geocube-token") || "";
  fields.instance.value = query.get("instance") || "";
  for (const name of ["bands", "vmin", "vmax"]) {
    if (query.has(name)) fields[name].value = query.get(name);
  }

  function headers() {
    const token = fields.token.value.trim();
    return token ? { Authorization: "Bearer " + token } : {};
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return (body.error ? body.error + ": " : "") + (body.detail || response.statusText);
    } catch (e) {
      return response.status + " " + response.statusText;
    }
  }

  // --- the map ----------------------------------------------------------------------------------------
  const map = L.map("map", { fadeAnimation: false, minZoom: 0, maxZoom: 22 }).setView([20, 0], 2);
  state.map = map;

  /** The tile URL (relative to this page) for the current instance, date and style. */
  function tileUrl(coords) {
    const params = new URLSearchParams();
    const day = fields.date.value;
    if (day) {
      const start = new Date(day + "T00:00:00Z");
      const end = new Date(start.getTime() + 86400000);
      params.set("start", start.toISOString());
      params.set("end", end.toISOString());
    }
    for (const name of ["bands", "vmin", "vmax"]) {
      const value = fields[name].value.trim();
      if (value) params.set(name === "vmin" ? "min" : name === "vmax" ? "max" : name, value);
    }
    const rest = params.toString();
    return "tiles/" + encodeURIComponent(state.instance) + "/" + coords.z + "/" + coords.x + "/" + coords.y + ".png" +
      (rest ? "?" + rest : "");
  }

  /** A grid layer whose tiles are fetched with the token in a header, then shown from a blob URL. */
  const GeocubeTiles = L.GridLayer.extend({
    createTile: function (coords, done) {
      const img = document.createElement("img");
      img.alt = "";
      img.setAttribute("role", "presentation");
      const url = tileUrl(coords);
      img.dataset.url = url;
      fetch(url, { headers: headers() })
        .then(async (response) => {
          if (!response.ok) throw new Error(await errorText(response));
          return response.blob();
        })
        .then((blob) => {
          const objectUrl = URL.createObjectURL(blob);
          img.onload = () => {
            URL.revokeObjectURL(objectUrl);
            state.tilesLoaded += 1;
            state.lastTileUrl = url;
            done(null, img);
          };
          img.onerror = () => done(new Error("not an image: " + url), img);
          img.src = objectUrl;
        })
        .catch((err) => {
          state.tileErrors += 1;
          say("tile " + coords.z + "/" + coords.x + "/" + coords.y + ": " + err.message, true);
          done(err, img);
        });
      return img;
    },
  });

  let tiles = null;
  let footprints = null;

  function footprintStyle(feature) {
    const day = fields.date.value;
    const selected = !day || feature.properties.datetime.slice(0, 10) === day;
    return { color: selected ? "#d7301f" : "#777", weight: selected ? 2 : 1, fill: false, opacity: selected ? 1 : 0.5 };
  }

  function fillDates(features) {
    const days = [...new Set(features.map((f) => f.properties.datetime.slice(0, 10)))].sort();
    state.dates = days;
    const keep = fields.date.value;
    fields.date.length = 1;
    for (const day of days) {
      const count = features.filter((f) => f.properties.datetime.slice(0, 10) === day).length;
      fields.date.add(new Option(day + " (" + count + (count > 1 ? " records)" : " record)"), day));
    }
    fields.date.value = days.includes(keep) ? keep : "";
    fields.date.disabled = days.length === 0;
  }

  async function show() {
    state.instance = fields.instance.value.trim();
    if (!state.instance) {
      say("give an instance id", true);
      return;
    }
    sessionStorage.setItem("geocube-token", fields.token.value.trim());
    say("loading records…");
    const response = await fetch("viewer/footprints/" + encodeURIComponent(state.instance), { headers: headers() });
    if (!response.ok) {
      say(await errorText(response), true);
      return;
    }
    const collection = await response.json();
    state.records = collection.features.map((f) => f.properties);
    fillDates(collection.features);
    if (footprints) footprints.remove();
    footprints = L.geoJSON(collection, {
      style: footprintStyle,
      onEachFeature: (feature, layer) =>
        layer.bindTooltip(feature.properties.name + " — " + feature.properties.datetime),
    });
    if (tiles) tiles.remove();
    tiles = new GeocubeTiles({ tileSize: 256, maxZoom: 22 });
    state.tiles = tiles;
    tiles.on("loading", () => { state.loading = true; });
    tiles.on("load", () => { state.loading = false; state.loads += 1; });
    if (collection.features.length) map.fitBounds(footprints.getBounds(), { maxZoom: 16 });
    tiles.addTo(map);
    footprints.addTo(map);
    say(collection.features.length + " records" + (collection.truncated ? " (the latest only)" : ""));
  }

  function redraw() {
    if (!tiles) return;
    if (footprints) footprints.setStyle(footprintStyle);
    tiles.redraw();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show().catch((err) => say(err.message, true));
  });
  fields.date.addEventListener("change", redraw);
  for (const name of ["bands", "vmin", "vmax"]) fields[name].addEventListener("change", redraw);

  if (fields.instance.value) show().catch((err) => say(err.message, true));
})();
