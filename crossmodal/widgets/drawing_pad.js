// The drawing pad's browser half (see drawing_pad.py for the Python half).
// A canvas drawn on with pointer events, so mouse, pen and touch all work. Its size is the
// `canvas_size` trait: square for a digit, wide (4 : 1) for a number. When a stroke ends, the canvas
// is shrunk to `resolution` (height, width) and its ink (the alpha channel: the canvas is
// transparent where nothing is drawn) is sent to Python as bytes in `pixels`.
// Python answers with `caption`, `message`, `seen_png` and `strip_png`, which are shown here.

function render({ model, el }) {
  const [height, width] = model.get("canvas_size");
  const [imageHeight, imageWidth] = model.get("image_size"); // what the model reads: 28×28, or 28×112 for numbers
  const seen = `${imageHeight}×${imageWidth}`;
  el.classList.add("crossmodal-pad");
  el.classList.toggle("cm-wide", imageWidth > imageHeight); // a number: everything stacked, full width
  el.innerHTML = `
    <div class="cm-row">
      <div class="cm-col">
        <canvas class="cm-canvas" width="${width}" height="${height}"></canvas>
        <div class="cm-controls">
          <label>brush <input class="cm-brush" type="range" min="4" max="48"></label>
          <button class="cm-clear" type="button">clear</button>
        </div>
      </div>
      <div class="cm-col">
        <div class="cm-label">what the model sees (${seen})</div>
        <img class="cm-seen" alt="the ${seen} image the model sees" style="visibility: hidden">
      </div>
    </div>
    <div class="cm-caption" aria-live="polite"></div>
    <div class="cm-sure"></div>
    <div class="cm-strip-box"><img class="cm-strip" alt="where the model looked while writing each character" hidden></div>
    <div class="cm-timing"></div>`;
  // The space the answer will take is kept from the start: the page does not grow when the first answer arrives,
  // so it never scrolls the canvas away under the pen (browsers scroll to keep a control below in place).
  el.querySelector(".cm-strip-box").style.minHeight = `${model.get("strip_space")}px`;
  const canvas = el.querySelector(".cm-canvas");
  const ctx = canvas.getContext("2d");
  const brush = el.querySelector(".cm-brush");
  const captionEl = el.querySelector(".cm-caption");
  const seenEl = el.querySelector(".cm-seen");
  const stripEl = el.querySelector(".cm-strip");
  const timingEl = el.querySelector(".cm-timing");
  const sureEl = el.querySelector(".cm-sure");

  // --- drawing ---------------------------------------------------------------------------
  let last = null; // the previous point of the stroke in progress, null between strokes

  function point(event) { // from CSS pixels on the page to canvas pixels
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * (width / box.width), (event.clientY - box.top) * (height / box.height)];
  }

  function segment(from, to) {
    ctx.strokeStyle = "black";
    ctx.lineWidth = model.get("brush");
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId); // keep the stroke even if the pointer leaves the box
    last = point(event);
    segment(last, last); // a dot, for a tap
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event]; // every sample, for smooth lines
    for (const e of events.length ? events : [event]) {
      const p = point(e);
      segment(last, p);
      last = p;
    }
  });
  function endStroke() {
    if (last === null) return;
    last = null;
    sendPixels();
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  function sendPixels() {
    const [h, w] = model.get("resolution");
    const small = document.createElement("canvas");
    small.width = w;
    small.height = h;
    const smallCtx = small.getContext("2d");
    smallCtx.imageSmoothingEnabled = true;
    smallCtx.imageSmoothingQuality = "high";
    smallCtx.drawImage(canvas, 0, 0, w, h);
    const rgba = smallCtx.getImageData(0, 0, w, h).data;
    const ink = new Uint8Array(w * h);
    for (let i = 0; i < ink.length; i++) ink[i] = rgba[4 * i + 3]; // alpha: 0 paper, 255 ink
    model.set("pixels", new DataView(ink.buffer));
    model.save_changes();
  }

  el.querySelector(".cm-clear").addEventListener("click", () => {
    ctx.clearRect(0, 0, width, height);
    sendPixels(); // an empty canvas: Python answers with the prompt
  });

  brush.value = model.get("brush");
  brush.addEventListener("input", () => {
    model.set("brush", Number(brush.value));
    model.save_changes();
  });

  // --- showing Python's answer ------------------------------------------------------------
  function showImage(img, bytes) { // an image that keeps its place: hidden, not removed, while there is none
    if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
    const none = !bytes || bytes.byteLength === 0;
    if (none) {
      img.removeAttribute("src");
      delete img.dataset.url;
    } else {
      img.dataset.url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
      img.src = img.dataset.url;
    }
    if (img === seenEl) img.style.visibility = none ? "hidden" : "visible"; // its box is sized by the CSS
    else img.hidden = none; // the strip: its box keeps the room (strip_space)
  }

  function show() {
    const caption = model.get("caption");
    captionEl.textContent = caption || model.get("message");
    captionEl.classList.toggle("cm-prompt", !caption);
    showImage(seenEl, model.get("seen_png"));
    showImage(stripEl, model.get("strip_png"));
    const sure = model.get("sureness"); // the product of the written characters' probabilities; -1: nothing written
    sureEl.textContent = caption && sure >= 0 ? `${(100 * sure).toFixed(0)}% sure` + (sure < 0.5 ? ": unsure, check it" : "") : "";
    sureEl.classList.toggle("cm-unsure", caption !== "" && sure >= 0 && sure < 0.5);
    timingEl.textContent = caption ? `answered in ${(1000 * model.get("seconds")).toFixed(0)} ms` : "";
  }

  let pending = false; // one update arrives as several trait changes: redraw once for all of them
  function scheduleShow() {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; show(); });
  }
  const answers = "change:caption change:message change:seen_png change:strip_png change:seconds change:sureness";
  model.on(answers, scheduleShow);
  const showBrush = () => { brush.value = model.get("brush"); };
  model.on("change:brush", showBrush);
  show();

  return () => { // when the view is removed (anywidget itself drops this view's model.on listeners)
    for (const img of [seenEl, stripEl]) if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  };
}

export default { render };
