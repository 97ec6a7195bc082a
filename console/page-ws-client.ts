/**
 * The WebSocket client page: MQTT connections from the browser (ws-connection.js), side by side
 * in columns, each under its own heading ("Connection 1", "Connection 2", ...). MQTT.js's browser
 * build is served from node_modules by the admin server and loaded when this page is first
 * opened. Leaving the page closes every connection.
 */
import { allBrokers } from './api.ts';
import { el } from './dom.ts';
import { connectionPanel } from './ws-connection.ts';

export async function render(section: HTMLElement) {
  const [{ default: mqtt }, tree] = await Promise.all([import('mqtt'), allBrokers()]);
  const columns = el('div', { class: 'connections' });
  const open = new Set<ReturnType<typeof connectionPanel>>();
  let made = 0;

  function add(): ReturnType<typeof connectionPanel> {
    const title = `Connection ${++made}`;
    // The first connection stays: the page always has one.
    const panel = connectionPanel(
      mqtt,
      tree,
      title,
      made === 1
        ? undefined
        : () => {
            panel.close();
            panel.node.remove();
            open.delete(panel);
          },
    );
    open.add(panel);
    columns.append(panel.node);
    return panel;
  }

  section.append(
    el('div', { class: 'row' }, el('button', { type: 'button', onclick: add }, 'New connection')),
    columns,
  );
  add();
  return () => {
    for (const panel of open) panel.close();
  };
}
