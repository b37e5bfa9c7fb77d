// The dashboard's small behaviours that must work before the WebAssembly has loaded (and
// after it). The Content-Security-Policy runs no inline handlers, so they live here, bound
// once on the document and keyed on data attributes.

// Copy buttons: <button data-copy="text">.
document.addEventListener('click', (event) => {
  const button = event.target instanceof Element ? event.target.closest('button[data-copy]') : null;
  if (!button) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    button.textContent = 'Copied';
  });
});

// The event-type picker: a group's "All" box (data-group-all) checks or clears the group's
// types (data-event-type); picking any type picks "Selected events" in the same form.
document.addEventListener('change', (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement)) return;
  if (box.matches('[data-group-all]')) {
    const group = box.closest('fieldset');
    if (group) group.querySelectorAll('input[data-event-type]').forEach((type) => { type.checked = box.checked; });
    pickSelectedEvents(box);
  } else if (box.matches('[data-event-type]') && box.checked) {
    pickSelectedEvents(box);
  }
});

function pickSelectedEvents(box) {
  const selected = box.form && box.form.querySelector('input[name="events"][value="selected"]');
  if (selected) selected.checked = true;
}
