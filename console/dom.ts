/**
 * Building the page without HTML strings: every text (topics, payloads, client ids, API
 * messages) goes in as a text node, so nothing a broker carries is ever parsed as markup.
 */
import type { BrokerTree } from './api.ts';

/**
 * An element: `el('button', { type: 'button', onclick }, 'Save')`. Attributes whose name starts
 * with `on` are listeners; `false`/`null`/`undefined` leave an attribute out; children are
 * nodes or strings (text nodes), arrays are flattened, null and false skipped.
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, unknown> = {},
  ...children: unknown[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function')
      node.addEventListener(name.slice(2), value as EventListener);
    else if (name === 'value') (node as HTMLInputElement).value = String(value);
    else if (name === 'checked') (node as HTMLInputElement).checked = Boolean(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node: Node & ParentNode, children: unknown[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let nextId = 0;

/**
 * A labelled field: `<label for>` + control, so the control's accessible name is the label.
 */
export function field(label: string, control: HTMLElement, hint?: string): HTMLDivElement {
  control.id ||= `field-${++nextId}`;
  return el(
    'div',
    { class: 'field' },
    el('label', { for: control.id }, label),
    control,
    hint ? el('small', {}, hint) : null,
  );
}

/** A `<select>` of `[value, text]` pairs. */
export function select(options: [string, string?][], attrs: Record<string, unknown> = {}): HTMLSelectElement {
  return el(
    'select',
    attrs,
    options.map(([value, text]) => el('option', { value }, text ?? value)),
  );
}

/** Replaces the children of `node`. */
export function replace(node: Element, ...children: unknown[]): void {
  node.replaceChildren();
  append(node, children);
}

/** A status line for results and errors; `role=status` so screen readers hear it. */
export function statusLine() {
  const node = el('p', { class: 'status', role: 'status' });
  return {
    node,
    ok(text: string) {
      node.className = 'status ok';
      node.textContent = text;
    },
    error(text: string) {
      node.className = 'status error';
      node.textContent = text;
    },
    /** A failure: an API refusal in the envelope's words (ApiFailure's message), or the error's. */
    failed(err: unknown) {
      this.error(err instanceof Error ? err.message : String(err));
    },
    clear() {
      node.className = 'status';
      node.textContent = '';
    },
  };
}

/**
 * A read-only value with a Copy button (endpoints, tokens). Where the clipboard API is missing
 * (a plain-http address other than localhost) the text is selected for Ctrl+C instead.
 * @param label accessible name of the value
 */
export function copyable(label: string, value: string): HTMLSpanElement {
  const input = el('input', {
    type: 'text',
    readonly: true,
    value,
    'aria-label': label,
    class: 'copy-value',
  });
  const button = el(
    'button',
    {
      type: 'button',
      'aria-label': `Copy ${label}`,
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(value);
          button.textContent = 'Copied';
        } catch {
          input.select();
          button.textContent = 'Press Ctrl+C';
        }
        setTimeout(() => (button.textContent = 'Copy'), 1500);
      },
    },
    'Copy',
  );
  return el('span', { class: 'copyable' }, input, button);
}

/**
 * A modal confirmation naming what goes; resolves true when the user confirms.
 * @param action the confirm button's text
 */
export function confirmDialog(title: string, lines: string[], action: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = el(
      'dialog',
      { 'aria-label': title, class: 'confirm' },
      el('h2', {}, title),
      lines.map((line) => el('p', {}, line)),
      el(
        'div',
        { class: 'row' },
        el('button', { type: 'button', autofocus: true, onclick: () => dialog.close('cancel') }, 'Cancel'),
        el('button', { type: 'button', class: 'danger', onclick: () => dialog.close('confirm') }, action),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'confirm');
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * A choice of broker from `allBrokers()`'s tree, grouped by namespace; option values are
 * `<broker>.<namespace>`. `preferred` (same form) is chosen when present.
 */
export function brokerSelect(
  tree: BrokerTree,
  preferred?: string | null,
  attrs: Record<string, unknown> = {},
): HTMLSelectElement {
  const choice = el(
    'select',
    attrs,
    tree
      .filter(({ brokers }) => brokers.length > 0)
      .map(({ namespace, brokers }) =>
        el(
          'optgroup',
          { label: namespace.name },
          brokers.map((b) =>
            el(
              'option',
              { value: `${b.name}.${namespace.name}` },
              `${b.name}.${namespace.name} (${b.authType})`,
            ),
          ),
        ),
      ),
  );
  if (preferred && [...choice.options].some((o) => o.value === preferred)) choice.value = preferred;
  return choice;
}

/** `<broker>.<namespace>` → [namespace, broker]. */
export function splitBroker(value: string): [string, string] {
  const dot = value.indexOf('.');
  return [value.slice(dot + 1), value.slice(0, dot)];
}

/** uPlot (served from node_modules), loaded the first time a chart needs it; index.html links its stylesheet. */
export async function loadUPlot() {
  const { default: uPlot } = await import('uplot');
  return uPlot;
}
