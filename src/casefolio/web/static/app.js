// casefolio pages: copy buttons, and uploads by drag and drop with a progress bar per file.
// Plain JavaScript (no build), loaded as a file: the Content-Security-Policy allows no inline script.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
      } catch (e) {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
    });
  }
}

function uploadOne(form, file, list) {
  return new Promise((resolve) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = "Waiting";
    item.append(name, bar, status);
    list.append(item);

    let url = form.action;
    if (form.querySelector("#reject-duplicate").checked) url += "&rejectDuplicate=true";
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      item.dataset.progressEvents = String(Number(item.dataset.progressEvents || 0) + 1);
      if (event.lengthComputable) {
        bar.value = Math.round((event.loaded / event.total) * 100);
        status.textContent = bar.value + "%";
      }
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
      if (xhr.status === 201) {
        bar.value = 100;
        status.className = "status done";
        status.textContent = "Uploaded";
        const link = document.createElement("a");
        link.href = body.url;
        link.textContent = "Open " + body.title;
        status.append(" · ", link);
        item.dataset.state = "done";
      } else {
        status.className = "status failed";
        status.textContent = "Not uploaded: " + (body.error || "error " + xhr.status);
        item.dataset.state = "failed";
      }
      resolve();
    });
    xhr.addEventListener("error", () => {
      status.className = "status failed";
      status.textContent = "Not uploaded: the connection failed";
      item.dataset.state = "failed";
      resolve();
    });
    const data = new FormData();
    data.append("file", file, file.name);
    status.textContent = "0%";
    xhr.send(data);
  });
}

async function uploadAll(form, files) {
  const list = document.getElementById("upload-list");
  await Promise.all(Array.from(files).map((file) => uploadOne(form, file, list)));
  const target = document.querySelector(form.dataset.refresh);
  if (target && window.htmx) window.htmx.trigger(target, "refresh");
}

function setUpUploads() {
  const form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  const input = form.querySelector('input[type="file"]');
  input.multiple = true;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.files.length) uploadAll(form, input.files).then(() => { input.value = ""; });
  });
  const zone = document.getElementById("dropzone");
  zone.hidden = false;
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) uploadAll(form, event.dataTransfer.files);
  });
}

// A form with data-confirm asks before it is sent (deleting a webhook).
function setUpConfirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpConfirmations();
  setUpUploads();
});
