// Can this process load and attach agentrace's probes? Tests and the CLI ask
// before they start, to fail (or skip) with the reason instead of a stack.
import { existsSync } from 'node:fs';
import { Probes } from './probes.js';
import { messageOf } from '@agentrace/protocol';

/** null when BPF is usable here, else why not and what to do. */
export function bpfUnavailableReason(): string | null {
  if (process.platform !== 'linux') return `BPF needs Linux; this is ${process.platform}`;
  if (!existsSync('/sys/kernel/btf/vmlinux')) {
    return 'kernel BTF (/sys/kernel/btf/vmlinux) is missing: a kernel with CONFIG_DEBUG_INFO_BTF=y is needed';
  }
  let probes: Probes | undefined;
  try {
    probes = Probes.load();
    // Loading proves the verifier accepts the programs; attaching one proves
    // tracepoints are allowed too.
    probes.attachProgram('process_exit');
    return null;
  } catch (err) {
    return messageOf(err);
  } finally {
    probes?.close();
  }
}
