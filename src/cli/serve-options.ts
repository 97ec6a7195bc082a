/**
 * How each row of the option table becomes a `pubsub serve` flag. A value option takes one
 * argument (`--port <value>`). A switch (a boolean, or a tri-state string such as
 * `--allow-anonymous auto|true|false`) has three forms: the bare flag sets it true, `--no-<flag>`
 * false, and `--flag <word>` any of its words (`true`/`false`/`yes`/`no`/`1`/`0` for a boolean).
 *
 * Commander hands back strings, `true` (bare flag) or `false` (`--no-` form); loadConfig coerces
 * and validates them exactly like environment and file values, so a flag never bypasses a clamp.
 * A flag not given stays undefined, so that the environment and the config file still apply.
 */
import { type Command, Option } from 'commander';
import { isSwitch, OPTIONS, type OptionDef, type OptionKey } from '../config.ts';

/** The words a switch accepts after its flag, for help and docs: `true|false`, `auto|true|false`. */
function switchWords(def: OptionDef): string {
  return def.kind === 'bool' ? 'true|false' : (def.choices ?? []).join('|');
}

/** The flag as help and docs show it: `--port <value>`, `--tls-self-signed [true|false]`. */
export function flagUsage(def: OptionDef): string {
  return isSwitch(def) ? `${def.flag} [${switchWords(def)}]` : `${def.flag} <value>`;
}

/** The `--no-` form of a switch's flag (`--tcp-nodelay` → `--no-tcp-nodelay`). */
export function negatedFlag(def: OptionDef): string {
  return `--no-${def.flag.slice(2)}`;
}

/**
 * Registers every option of the table on `command` and returns the function that turns
 * commander's parsed options back into option-table keys (commander names them by camelCased
 * flag, which is not always the key: `--max-qos` is `maximumQoS`).
 */
export function addServeOptions(
  command: Command,
): (parsed: Record<string, unknown>) => Record<string, unknown> {
  const keyOfAttribute = new Map<string, OptionKey>();
  for (const key of Object.keys(OPTIONS) as OptionKey[]) {
    const def: OptionDef = OPTIONS[key];
    const negation = isSwitch(def) ? `; ${negatedFlag(def)}: false` : '';
    const option = new Option(
      flagUsage(def),
      `${def.description} [${def.env}; default ${def.default}${negation}]`,
    );
    keyOfAttribute.set(option.attributeName(), key);
    command.addOption(option);
    // Registered after the positive form, so commander gives it no default of its own.
    if (isSwitch(def)) command.addOption(new Option(negatedFlag(def)).hideHelp());
  }
  return (parsed) => {
    const flags: Record<string, unknown> = {};
    for (const [attribute, value] of Object.entries(parsed))
      flags[keyOfAttribute.get(attribute) ?? attribute] = value;
    return flags;
  };
}
