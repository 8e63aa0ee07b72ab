// The firmware on MicroPython's 32-bit webassembly port (npm package pinned in package.json), for
// heap figures that mean an ESP32: 16-byte GC blocks and 4-byte pointers, where the 64-bit unix
// port has 32 and 8. Runs firmware/tests/wasmheap.py from a ROMFS image mounted at /rom, outside
// the GC heap, as a board's ROMFS partition (or frozen code) keeps bytecode out of its heap.
//   node heap.mjs IMAGE CONFIG_JSON TICKS REQUESTS_PER_TICK TASK_MS [HEAP_KB]
// Prints "key value" lines (wasmheap.py's report) and exits 1 on a Python error.
// What the port is: heapsize is only the initial heap, which grows instead of raising
// MemoryError, so the check is that it never grew; gc.collect() inside Python runs only when the
// call from JavaScript returns, so boot, each tick and the task run are separate calls.
import { readFileSync } from "node:fs";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const [image, config, ticks, perTick, taskMs, heapKb = "64"] = process.argv.slice(2);
let out = "";
const mp = await loadMicroPython({
  heapsize: Number(heapKb) * 1024,
  romfs: new Uint8Array(readFileSync(image)),
  stdout: (line) => { out += line + "\n"; },
  stderr: (line) => { out += line + "\n"; },
  linebuffer: true,
});
mp.FS.writeFile("/config.json", readFileSync(config));
try {
  // Only /rom: the port's .frozen directory holds Python wrappers (time, binascii, os) that would
  // shadow its C modules. asyncio lives only there, so it is imported once with .frozen on the
  // path after the C time module is in sys.modules.
  mp.runPython("import sys\nsys.path = ['/rom']\nimport time\nsys.path.append('.frozen')\n" +
               "import asyncio\nsys.path.pop()\nimport wasmheap\nwasmheap.start()");
  mp.runPython("wasmheap.probe.sample(True)");
  for (let i = 0; i < 5; i++) {  // wasmheap.Probe.boot's phases
    mp.runPython(`wasmheap.probe.boot(${i})`);
    mp.runPython("wasmheap.probe.sample(True)");
  }
  for (let i = 0; i < Number(ticks); i++) {
    mp.runPython(`wasmheap.probe.tick(${Number(perTick)})`);
  }
  if (Number(taskMs) > 0) {
    await mp.runPythonAsync(`await wasmheap.probe.run_tasks(${Number(taskMs)})`);
  }
  mp.runPython("wasmheap.probe.sample()");
  mp.runPython("wasmheap.probe.report()");
} catch (err) {
  process.stdout.write(out);
  process.stdout.write(`wasm_error ${err}\n`);
  process.exit(1);
}
process.stdout.write(out);
