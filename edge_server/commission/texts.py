"""What `nsp-edge commission` says to the site technician, in Dutch and English.

Every bit of every bit-field register in registers.toml (fault bits, status bits, role bits) has
an entry in BIT_TEXTS: what it means and the likely fix, with the level it gives on the checklist.
tests/test_commission.py fails when a bit in the register map has no Dutch or English text here,
so a new fault bit cannot ship without its sentence for the technician.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

Lang = Literal["nl", "en"]
LANGS: tuple[Lang, ...] = ("nl", "en")


class Level(IntEnum):
    """Checklist levels; the overall result is the worst one (INFO counts as PASS)."""

    INFO = 0
    PASS = 1
    WARN = 2
    FAIL = 3


@dataclass(frozen=True)
class BitText:
    level: Level
    nl: str
    en: str


# key: "<register>.<bit name>" exactly as in registers.toml.
BIT_TEXTS: dict[str, BitText] = {
    # ------------------------------------------------------------ roles (identity)
    "roles.power": BitText(Level.INFO, "stroom en aggregaat", "power and generator"),
    "roles.fridge": BitText(Level.INFO, "medicijnkoelkast", "medicine fridge"),
    "roles.entrance": BitText(Level.INFO, "bezoekers tellen", "visitor counting"),
    # ------------------------------------------------------------ status (identity)
    "status.config_error": BitText(
        Level.FAIL,
        "config.json op het knooppunt bevat fouten (het knooppunt drukt ze af op de "
        "console): sluit USB aan, lees de console (mpremote), verbeter config.json en herstart "
        "het knooppunt.",
        "config.json on the node has errors (the node prints them on its console): connect USB, "
        "read the console (mpremote), fix config.json and reset the node.",
    ),
    "status.safe_mode": BitText(
        Level.FAIL,
        "Knooppunt staat in veilige modus na herhaalde crashes: de rollen staan uit. Lees de "
        "console-log, verhelp de oorzaak (vaak config.json of een sensor met kortsluiting) en "
        "herstart.",
        "Node is in safe mode after repeated crashes: its roles are off. Read the console log, fix "
        "the cause (often config.json or a shorted sensor) and reset the node.",
    ),
    "status.persist_error": BitText(
        Level.WARN,
        "Knooppunt kan zijn tellers niet in flash opslaan: draaiuren en bezoekerstotalen gaan bij "
        "een herstart verloren. Flash het bestandssysteem opnieuw of vervang het bord.",
        "Node cannot save its counters to flash: run hours and visitor totals are lost at a reset. "
        "Re-flash the filesystem or replace the board.",
    ),
    "status.virtual_clock": BitText(
        Level.INFO,
        "Virtueel knooppunt (simulator met virtuele klok), geen echt bord: goed voor een "
        "oefenronde.",
        "Virtual node (simulator with a virtual clock), not a real board: fine for a rehearsal.",
    ),
    "status.net_down": BitText(
        Level.WARN,
        "Het netwerk van het knooppunt (Wi-Fi of Ethernet uit config.json) is niet verbonden: "
        "Modbus TCP is onbereikbaar, RS-485 werkt door. Controleer SSID/wachtwoord, bereik of "
        "kabel (registers net_state, net_rssi_dbm).",
        "The node's network (Wi-Fi or Ethernet from config.json) is not connected: Modbus TCP is "
        "unreachable, RS-485 keeps working. Check the SSID/password, signal or cable (registers "
        "net_state, net_rssi_dbm).",
    ),
    # ------------------------------------------------------------ power faults
    "power_faults.fuel_open_loop": BitText(
        Level.FAIL,
        "Brandstofsensor: open kring (lusstroom onder 3,6 mA): controleer de bedrading van de "
        "4-20 mA-lus (B1, A1) en de 24 V-lusvoeding (PS1).",
        "Fuel sender: open circuit (loop current below 3.6 mA): check the 4-20 mA loop wiring "
        "(B1, A1) and the 24 V loop supply (PS1).",
    ),
    "power_faults.fuel_over_range": BitText(
        Level.FAIL,
        "Brandstofsensor: stroom boven 21 mA: kortsluiting in de lus of geen 4-20 mA-sensor: "
        "controleer de kabel naar B1 op kortsluiting en het type sensor.",
        "Fuel sender: current above 21 mA: a short in the loop or not a 4-20 mA sender: check the "
        "cable to B1 for a short and the sender type.",
    ),
    "power_faults.starter_sense": BitText(
        Level.FAIL,
        "Startaccu-meting onmogelijk (ingang leest ca. 0 V): controleer de spanningsdeler "
        "100k/15k (A2) en de draad naar de startaccu (BAT2).",
        "Starter battery reading impossible (input reads about 0 V): check the 100k/15k divider "
        "(A2) and the wire to the starter battery (BAT2).",
    ),
    "power_faults.battery_sensor": BitText(
        Level.FAIL,
        "INA226 (meting site-accu, U3) antwoordt niet op I2C: controleer SDA (GPIO 21), SCL "
        "(GPIO 22), 3,3 V en GND naar U3, en dat het adres 0x40 is (A0 en A1 aan GND).",
        "INA226 (site battery monitor, U3) does not answer on I2C: check SDA (GPIO 21), SCL "
        "(GPIO 22), 3.3 V and GND to U3, and that its address is 0x40 (A0 and A1 to GND).",
    ),
    "power_faults.start_failed": BitText(
        Level.FAIL,
        "Aggregaat bevestigde de start niet binnen de termijn: controleer de startdraden K1 naar "
        "de aggregaatbesturing (staat die op AUTO?), brandstof, startaccu en de "
        "aggregaat-detectie (OC2).",
        "Generator did not confirm a start within the deadline: check the remote-start wires K1 to "
        "the generator controller (is it in AUTO?), fuel, starter battery and the generator sense "
        "(OC2).",
    ),
    "power_faults.mains_sense": BitText(
        Level.FAIL,
        "Netspanningsdetectie klappert (meer dan 10 wisselingen per minuut): controleer de "
        "bedrading van optomodule OC1, losse klemmen en de 10k pull-up op GPIO 34.",
        "Mains sense is flapping (more than 10 changes a minute): check the wiring of opto module "
        "OC1, loose terminals and the 10k pull-up on GPIO 34.",
    ),
    # ------------------------------------------------------------ fridge faults
    "fridge_faults.fridge_probe_missing": BitText(
        Level.FAIL,
        "Koelkastsensor (T1) geeft al langer dan probe_missing_s geen meting: controleer of de "
        "sensor in X3 zit, de datadraad naar GPIO 4 en de 4,7k pull-up naar 3,3 V.",
        "Fridge probe (T1) has given no reading for longer than probe_missing_s: check it is "
        "plugged into X3, the data wire to GPIO 4 and the 4.7k pull-up to 3.3 V.",
    ),
    "fridge_faults.fridge_probe_crc": BitText(
        Level.FAIL,
        "Koelkastsensor: metingen met CRC-fouten, de 1-Wire-bus is gestoord: controleer de 4,7k "
        "pull-up, een losse connector, de kabellengte, en leg de kabel niet langs netsnoeren.",
        "Fridge probe: readings with CRC errors, the 1-Wire bus is disturbed: check the 4.7k "
        "pull-up, a loose connector, the cable length, and keep the cable away from mains cables.",
    ),
    "fridge_faults.fridge_probe_power_on": BitText(
        Level.FAIL,
        "Koelkastsensor meldt 85,0 °C (zijn opstartwaarde): hij valt tijdens de meting zonder "
        "voeding: controleer VDD (3,3 V) en GND van de sensor (geen parasitaire voeding) en de "
        "pull-up.",
        "Fridge probe reports 85.0 °C (its power-on value): it loses power during the conversion: "
        "check the probe's VDD (3.3 V) and GND wires (no parasite power) and the pull-up.",
    ),
    "fridge_faults.ambient_probe_fault": BitText(
        Level.FAIL,
        "Omgevingssensor (T2) ontbreekt of meet fout: controleer connector X3, de datadraad, de "
        "4,7k pull-up en de voeding van de sensor.",
        "Ambient probe (T2) missing or faulty: check connector X3, the data wire, the 4.7k pull-up "
        "and the probe's supply.",
    ),
    # ------------------------------------------------------------ entrance faults
    "entrance_faults.beam_a_blocked": BitText(
        Level.FAIL,
        "IR-straal A (buiten) langer dan blocked_fault_s onderbroken: richt zender TXA en "
        "ontvanger RXA op elkaar uit, maak de lenzen schoon, haal weg wat de straal blokkeert; "
        "een doorgeknipte ontvangerdraad leest ook 'onderbroken' (controleer X4).",
        "IR beam A (outside) broken for longer than blocked_fault_s: align emitter TXA with "
        "receiver RXA, clean the lenses, remove what blocks the beam; a cut receiver wire also "
        "reads 'broken' (check X4).",
    ),
    "entrance_faults.beam_b_blocked": BitText(
        Level.FAIL,
        "IR-straal B (binnen) langer dan blocked_fault_s onderbroken: richt zender TXB en "
        "ontvanger RXB op elkaar uit, maak de lenzen schoon, haal weg wat de straal blokkeert; "
        "een doorgeknipte ontvangerdraad leest ook 'onderbroken' (controleer X4).",
        "IR beam B (inside) broken for longer than blocked_fault_s: align emitter TXB with "
        "receiver RXB, clean the lenses, remove what blocks the beam; a cut receiver wire also "
        "reads 'broken' (check X4).",
    ),
}

# Which fault bits belong to which reading: shown next to the value.
FAULTS_OF: dict[str, tuple[str, ...]] = {
    "mains_present": ("mains_sense",),
    "gen_running": ("start_failed",),
    "gen_state": ("start_failed",),
    "fuel_sender_ma": ("fuel_open_loop", "fuel_over_range"),
    "fuel_level_pct": ("fuel_open_loop", "fuel_over_range"),
    "fuel_l": ("fuel_open_loop", "fuel_over_range"),
    "starter_battery_v": ("starter_sense",),
    "starter_battery_min_v": ("starter_sense",),
    "battery_v": ("battery_sensor",),
    "battery_a": ("battery_sensor",),
    "battery_w": ("battery_sensor",),
    "battery_soc_pct": ("battery_sensor",),
    "fridge_temp_c": ("fridge_probe_missing", "fridge_probe_crc", "fridge_probe_power_on"),
    "fridge_min_c": ("fridge_probe_missing", "fridge_probe_crc", "fridge_probe_power_on"),
    "fridge_max_c": ("fridge_probe_missing", "fridge_probe_crc", "fridge_probe_power_on"),
    "ambient_temp_c": ("ambient_probe_fault",),
    "visitors_in": ("beam_a_blocked", "beam_b_blocked"),
    "visitors_out": ("beam_a_blocked", "beam_b_blocked"),
    "occupancy": ("beam_a_blocked", "beam_b_blocked"),
}

# Every other sentence, as str.format templates: key -> (nl, en).
MESSAGES: dict[str, tuple[str, str]] = {
    "no_answer": (
        "Geen antwoord van unit {unit} op {bus} binnen {timeout:g} s: controleer voeding van het "
        "knooppunt, A/B-bedrading, het unit-id (node_id in config.json) en baudrate/pariteit.",
        "No answer from unit {unit} on {bus} within {timeout:g} s: check the node's power, the A/B "
        "wiring, the unit id (node_id in config.json) and baud rate/parity.",
    ),
    "no_answer_tcp": (
        "Geen antwoord van unit {unit} op {bus} binnen {timeout:g} s: de verbinding staat, maar "
        "het knooppunt antwoordt niet op dit unit-id: controleer het unit-id (node_id in "
        "config.json) en of dit adres wel het knooppunt is (en geen ander apparaat).",
        "No answer from unit {unit} on {bus} within {timeout:g} s: the connection is up but the "
        "node does not answer this unit id: check the unit id (node_id in config.json) and that "
        "this address is the node (not another device).",
    ),
    "port_error": (
        "Kan {bus} niet openen ({detail}): is de USB-RS485-adapter aangesloten (ls /dev/ttyUSB*), "
        "houdt geen ander programma (nsp-edge run) de poort vast, zit u in de groep dialout?",
        "Cannot open {bus} ({detail}): is the USB-RS485 adapter plugged in (ls /dev/ttyUSB*), does "
        "no other program (nsp-edge run) hold the port, are you in the dialout group?",
    ),
    "port_error_tcp": (
        "Kan geen verbinding maken met {bus} ({detail}): klopt host:poort in site.toml, staat het "
        "knooppunt aan en op hetzelfde netwerk (ping), en is Modbus TCP op het knooppunt aan "
        "(poort 502 tenzij anders ingesteld)?",
        "Cannot connect to {bus} ({detail}): is host:port in site.toml right, is the node powered "
        "and on the same network (ping), and is Modbus TCP on at the node (port 502 unless set "
        "otherwise)?",
    ),
    "bus_silent": (
        "Niemand antwoordde op {bus}: meestal verkeerde baudrate of pariteit (de edge verwerpt "
        "verminkte frames als CRC-fout, dat lijkt op een time-out) of A en B verwisseld.",
        "Nobody answered on {bus}: usually a wrong baud rate or parity (the edge drops garbled "
        "frames for a bad CRC, which looks like a timeout) or A and B swapped.",
    ),
    "exception_reply": (
        "Unit {unit} antwoordde met een Modbus-fout ({detail}): is dit wel een NSP-knooppunt met "
        "een passende firmware?",
        "Unit {unit} answered with a Modbus exception ({detail}): is this an NSP node with a "
        "matching firmware?",
    ),
    "map_ok": ("Registerkaart versie {version}.", "Register map version {version}."),
    "map_unknown": (
        "Knooppunt meldt registerkaart versie {version}; deze edge kent {known}. Werk de "
        "edge-software bij of flash een passende firmware; tot dan worden geen waarden gelezen.",
        "Node reports register map version {version}; this edge knows {known}. Update the edge "
        "service or flash a matching firmware; no values are read until then.",
    ),
    "node_id_ok": ("node_id {node_id} = unit {unit}.", "node_id {node_id} = unit {unit}."),
    "node_id_wrong": (
        "node_id op het bord is {node_id}, maar site.toml verwacht unit {unit}: zet node_id in "
        "config.json op {unit} of pas unit in site.toml aan.",
        "node_id on the board is {node_id} but site.toml expects unit {unit}: set node_id in "
        "config.json to {unit} or change unit in site.toml.",
    ),
    "roles_ok": ("Rollen: {board}.", "Roles: {board}."),
    "roles_none": (
        "Het bord heeft geen rollen (config.json 'roles' is leeg): zet de rollen van dit bord in "
        "config.json.",
        "The board has no roles (config.json 'roles' is empty): set this board's roles in "
        "config.json.",
    ),
    "roles_wrong": (
        "Rollen op het bord: {board}; site.toml verwacht: {expected}. Pas 'roles' in config.json "
        "van het bord of in site.toml ({node}) aan.",
        "Roles on the board: {board}; site.toml expects: {expected}. Change 'roles' in the "
        "board's config.json or in site.toml ({node}).",
    ),
    "firmware": ("Firmware {fw}, up {uptime}, {boots} keer opgestart.",
                 "Firmware {fw}, up {uptime}, booted {boots} times."),
    "fw_differ": (
        "Knooppunten draaien verschillende firmware ({versions}): flash alle borden met dezelfde "
        "versie.",
        "Nodes run different firmware ({versions}): flash every board with the same version.",
    ),
    "reset_ok": ("Laatste reset: {cause}.", "Last reset: {cause}."),
    "reset_watchdog": (
        "Laatste reset door de watchdog: het knooppunt liep vast. Lees de console-log; houdt het "
        "aan, meld het met de log.",
        "Last reset by the watchdog: the node hung. Read the console log; if it keeps happening, "
        "report it with the log.",
    ),
    "reset_soft": (
        "Laatste reset was een software-reset of crash (panic): controleer crash_count en de "
        "console-log.",
        "Last reset was a software reset or a crash (panic): check crash_count and the console "
        "log.",
    ),
    "crashes": (
        "{count} crash(es) op rij: een onstabiele voeding (brown-out meldt zich op de ESP32 als "
        "power_on) of een firmwarefout. Meet de 5 V/3,3 V onder belasting, lees de console-log.",
        "{count} crash(es) in a row: an unstable supply (the ESP32 reports a brown-out as "
        "power_on) or a firmware fault. Measure 5 V/3.3 V under load, read the console log.",
    ),
    "heap_ok": ("Vrij geheugen {heap} B.", "Free heap {heap} B."),
    "heap_low": (
        "Weinig vrij geheugen: {heap} B (onder {limit} B): minder rollen op dit bord of meld het.",
        "Low free heap: {heap} B (below {limit} B): fewer roles on this board, or report it.",
    ),
    "bus_ok": ("Bus: {rx} verzoeken, 0 CRC-fouten.", "Bus: {rx} requests, 0 CRC errors."),
    "bus_crc": (
        "{crc} frames met CRC-fout op de RS-485-bus (naast {rx} goede verzoeken sinds de "
        "start): controleer 120 ohm afsluiting aan beide "
        "uiteinden (niet in het midden), de biasing bij de edge-PC, getwiste aderparen met "
        "afscherming aan één kant, en dezelfde baudrate/pariteit op alle knooppunten.",
        "{crc} frames with a CRC error on the RS-485 bus (besides {rx} good requests since "
        "boot): check the 120 ohm termination at both "
        "ends (not in the middle), the biasing at the edge PC, twisted pairs with the shield "
        "grounded at one end, and the same baud rate/parity on every node.",
    ),
    "exceptions": (
        "{count} Modbus-foutantwoorden verstuurd: een master vraagt adressen die niet bestaan "
        "(andere software op de bus?).",
        "{count} Modbus exception replies sent: a master asks for addresses that do not exist "
        "(other software on the bus?).",
    ),
    "faults_none": ("Geen storingen ({role}).", "No faults ({role})."),
    "gen_without_relay": (
        "Aggregaat draait terwijl het startrelais uit is en er netspanning is: controleer de "
        "bedrading van de aggregaat-detectie (OC2), of het aggregaat draait op eigen houtje "
        "(handmatig of een test op de besturing).",
        "Generator running while the relay is off and mains is present: check the generator "
        "sense wiring (OC2), or the set is running on its own (manual or a test at its "
        "controller).",
    ),
    "mains_absent": (
        "Geen netspanning gezien en het aggregaat draait niet: controleer optomodule OC1 en zijn "
        "bedrading (een losse draad leest 'geen net'), of er is echt een stroomstoring.",
        "No mains seen and the generator is not running: check opto module OC1 and its wiring (a "
        "loose wire reads 'no mains'), or there really is a power cut.",
    ),
    "relay_on": (
        "Startrelais is bekrachtigd (een testrun loopt?): commissioning schrijft nooit naar het "
        "relais; beëindig de test via de site-pagina.",
        "Start relay is energised (a test run in progress?): commissioning never writes to the "
        "relay; end the test from the site page.",
    ),
    "starter_low": (
        "Startaccu {volts:.2f} V: zwak (onder {limit:.1f} V in rust); laad of vervang BAT2.",
        "Starter battery {volts:.2f} V: weak (below {limit:.1f} V at rest); charge or replace "
        "BAT2.",
    ),
    "battery_range": (
        "Site-accu {volts:.2f} V ligt buiten {lo:g}-{hi:g} V: controleer de bus-aansluiting van "
        "U3 en de accu.",
        "Site battery {volts:.2f} V is outside {lo:g}-{hi:g} V: check U3's bus connection and the "
        "battery.",
    ),
    "fridge_range": (
        "Koelkast {temp:.1f} °C buiten {lo:.1f}-{hi:.1f} °C: laat de koelkast op temperatuur "
        "komen, controleer of T1 in het glycolflesje in de koelkast zit.",
        "Fridge {temp:.1f} °C outside {lo:.1f}-{hi:.1f} °C: let the fridge reach its temperature; "
        "check T1 sits in the glycol vial inside the fridge.",
    ),
    "door_open": (
        "Koelkastdeur open: sluit hem; staat hij dicht, controleer reedcontact S1 en de draad "
        "(een doorgeknipte draad leest 'open').",
        "Fridge door open: close it; if it is closed, check reed contact S1 and its wire (a cut "
        "wire reads 'open').",
    ),
    "fridge_alarm": (
        "Lokaal koelkastalarm actief (zoemer): temperatuur te lang buiten het bereik.",
        "Local fridge alarm active (buzzer): temperature outside the range for too long.",
    ),
    "unit_not_configured": (
        "--unit {unit}: geen knooppunt met die unit in {source} (wel: {units}).",
        "--unit {unit}: no node with that unit in {source} (there are: {units}).",
    ),
    "scan_found": ("Gevonden op {bus}: {units} ({seconds:.1f} s).",
                   "Found on {bus}: {units} ({seconds:.1f} s)."),
    "scan_none": (
        "Geen enkele unit in {first}-{last} antwoordde op {bus}: controleer baudrate/pariteit, "
        "A/B-bedrading en de voeding van de knooppunten.",
        "No unit in {first}-{last} answered on {bus}: check baud rate/parity, A/B wiring and the "
        "nodes' power.",
    ),
    "watch_changed": ("{node}: {what}: {old} → {new}", "{node}: {what}: {old} → {new}"),
    "watch_same": ("(geen wijzigingen)", "(no changes)"),
    "record_queued": (
        "Vastgelegd: inbedrijfstelling {result} door {by} staat klaar voor de C-NSP-hub in "
        "{path} (bericht {id}); de edge-service verstuurt het.",
        "Recorded: commissioning {result} by {by} is queued for the C-NSP hub in {path} "
        "(message {id}); the edge service sends it.",
    ),
    "record_no_uplink": (
        "Let op: [uplink] enabled = false in site.toml: het bericht blijft in de outbox tot de "
        "uplink aanstaat.",
        "Note: [uplink] enabled = false in site.toml: the message stays in the outbox until the "
        "uplink is enabled.",
    ),
}

LABELS: dict[str, tuple[str, str]] = {
    "node": ("Knooppunt", "Node"),
    "values": ("Waarden", "Values"),
    "checklist": ("Controlelijst", "Checklist"),
    "overall": ("Totaal", "Overall"),
    "na": ("n.b.", "n/a"),
    "reading": ("lezing", "read"),
    "none": ("geen", "none"),
    "check": ("controle", "check"),
}


def bit_text(register: str, bit: str, lang: Lang) -> str:
    text = BIT_TEXTS[f"{register}.{bit}"]
    return text.nl if lang == "nl" else text.en


def message(key: str, lang: Lang, **params: object) -> str:
    nl, en = MESSAGES[key]
    return (nl if lang == "nl" else en).format(**params)


def label(key: str, lang: Lang) -> str:
    nl, en = LABELS[key]
    return nl if lang == "nl" else en

# --test-io: what the technician is asked to do, and what the node saw. key -> (nl, en)
IO_MESSAGES: dict[str, tuple[str, str]] = {
    "door_open": ("Open nu de koelkastdeur.", "Open the fridge door now."),
    "door_open.ok": ("Deur open gezien na {seconds:g} s (door_open = 1).",
                     "Door open seen after {seconds:g} s (door_open = 1)."),
    "door_open.fail": (
        "Geen open deur gezien binnen {seconds:g} s: controleer reedcontact S1 (magneet op de "
        "deur, schakelaar op het frame, max. ~10 mm), de draad naar X3/GPIO 27.",
        "No open door seen within {seconds:g} s: check reed contact S1 (magnet on the door, "
        "switch on the frame, at most ~10 mm apart) and its wire to GPIO 27.",
    ),
    "door_closed": ("Sluit nu de koelkastdeur.", "Close the fridge door now."),
    "door_closed.ok": ("Deur dicht gezien na {seconds:g} s.",
                       "Door closed seen after {seconds:g} s."),
    "door_closed.fail": (
        "Deur blijft 'open' na {seconds:g} s: staat de magneet tegenover het reedcontact? Een "
        "doorgeknipte draad leest ook 'open'.",
        "Door still reads 'open' after {seconds:g} s: is the magnet opposite the reed contact? A "
        "cut wire also reads 'open'.",
    ),
    "walk_in": ("Loop nu één keer naar binnen door de ingang (eerst straal A, dan B).",
                "Walk in through the entrance once now (beam A first, then B)."),
    "walk_in.ok": ("Binnenkomst geteld na {seconds:g} s (visitors_in +1).",
                   "Walk-in counted after {seconds:g} s (visitors_in +1)."),
    "walk_in.fail": (
        "Geen binnenkomst geteld binnen {seconds:g} s: controleer dat beide stralen uitgelijnd "
        "zijn en dat A buiten en B binnen zit (verwisseld telt als naar buiten).",
        "No walk-in counted within {seconds:g} s: check both beams are aligned and that A is "
        "outside and B inside (swapped counts as walking out).",
    ),
    "fuel_unplug": ("Trek nu de stekker van de brandstofsensor (B1) los.",
                    "Pull the fuel sender (B1) plug now."),
    "fuel_unplug.ok": ("Open kring gezien na {seconds:g} s (fuel_open_loop).",
                       "Open circuit seen after {seconds:g} s (fuel_open_loop)."),
    "fuel_unplug.fail": (
        "Geen open kring gezien binnen {seconds:g} s: meet de lusstroom; loopt er stroom zonder "
        "sensor, dan is er een sluiting in de kabel of de shunt (A1).",
        "No open circuit seen within {seconds:g} s: measure the loop current; current without "
        "the sender means a short in the cable or at the shunt (A1).",
    ),
    "fuel_replug": ("Steek de stekker van de brandstofsensor terug.",
                    "Plug the fuel sender back in."),
    "fuel_replug.ok": ("Brandstofsensor weer gezien na {seconds:g} s ({ma}).",
                       "Fuel sender back after {seconds:g} s ({ma})."),
    "fuel_replug.fail": (
        "Brandstofsensor niet terug binnen {seconds:g} s: zit de stekker goed, staat de 24 V "
        "lusvoeding (PS1) aan?",
        "Fuel sender not back within {seconds:g} s: is the plug in, is the 24 V loop supply "
        "(PS1) on?",
    ),
}


def io_message(key: str, lang: Lang, **params: object) -> str:
    nl, en = IO_MESSAGES[key]
    return (nl if lang == "nl" else en).format(**params)
