# Generated from edge_server/regmap/registers.toml by `nsp-edge regmap --format firmware`.
# Do not edit: tests/test_regmap.py fails when this file drifts from the definition.
from micropython import const

MAP_VERSION = const(1)
IMAGE_SIZE = const(106)
N_COILS = const(4)
N_DISCRETE = const(6)
NA_U16 = const(0xFFFF)
NA_I16 = const(0x8000)
NA_U32 = const(0xFFFFFFFF)

# Blocks: (start, size)
BLOCK_IDENTITY = (0, 20)
BLOCK_POWER = (20, 30)
BLOCK_FRIDGE = (50, 20)
BLOCK_ENTRANCE = (70, 10)
BLOCK_SETTINGS = (80, 10)
BLOCK_COMMS = (90, 16)

# Registers (address; 32-bit values take this and the next address)
R_MAP_VERSION = const(0)  # u16
R_NODE_ID = const(1)  # u16
R_ROLES = const(2)  # u16
R_FW_MAJOR = const(3)  # u16
R_FW_MINOR = const(4)  # u16
R_FW_PATCH = const(5)  # u16
R_UPTIME_S = const(6)  # u32 s
R_RESET_CAUSE = const(8)  # u16
R_FREE_HEAP_B = const(9)  # u32 B
R_CONFIG_CRC = const(11)  # u32
R_BOOT_COUNT = const(13)  # u16
R_STATUS = const(14)  # u16
R_CRASH_COUNT = const(15)  # u16
R_RX_FRAMES = const(16)  # u16
R_CRC_ERRORS = const(17)  # u16
R_EXCEPTIONS = const(18)  # u16
R_MAINS_PRESENT = const(20)  # bool
R_GEN_RUNNING = const(21)  # bool
R_RELAY_ON = const(22)  # bool
R_GEN_STATE = const(23)  # u16
R_GEN_RUN_REASON = const(24)  # u16
R_RUN_HOURS_H = const(25)  # u32 h
R_START_COUNT = const(27)  # u16
R_FUEL_SENDER_MA = const(28)  # u16 mA
R_FUEL_LEVEL_PCT = const(29)  # u16 %
R_FUEL_L = const(30)  # u32 L
R_STARTER_BATTERY_V = const(32)  # u16 V
R_STARTER_BATTERY_MIN_V = const(33)  # u16 V
R_BATTERY_V = const(34)  # u16 V
R_BATTERY_A = const(35)  # i16 A
R_BATTERY_W = const(36)  # i16 W
R_BATTERY_SOC_PCT = const(37)  # u16 %
R_POWER_FAULTS = const(38)  # u16
R_LAST_COMMAND = const(39)  # u16
R_FRIDGE_TEMP_C = const(50)  # i16 °C
R_AMBIENT_TEMP_C = const(51)  # i16 °C
R_FRIDGE_MIN_C = const(52)  # i16 °C
R_FRIDGE_MAX_C = const(53)  # i16 °C
R_DOOR_OPEN = const(54)  # bool
R_FRIDGE_ALARM = const(55)  # bool
R_FRIDGE_FAULTS = const(56)  # u16
R_DOOR_OPEN_S = const(57)  # u16 s
R_VISITORS_IN = const(70)  # u32
R_VISITORS_OUT = const(72)  # u32
R_OCCUPANCY = const(74)  # u16
R_ENTRANCE_FAULTS = const(75)  # u16
R_FRIDGE_LOW_C = const(80)  # i16 °C
R_FRIDGE_HIGH_C = const(81)  # i16 °C
R_FRIDGE_ALARM_DELAY_S = const(82)  # u16 s
R_GEN_START_DEADLINE_S = const(83)  # u16 s
R_WRITES_ACCEPTED = const(90)  # u16
R_LAST_WRITER_IP = const(91)  # u32
R_LAST_WRITE_ADDRESS = const(93)  # u16
R_LAST_WRITE_FC = const(94)  # u16
R_WRITES_REFUSED = const(95)  # u16
R_TCP_CLIENTS_DROPPED = const(96)  # u16
R_NET_STATE = const(97)  # u16
R_NET_IP = const(98)  # u32
R_NET_RSSI_DBM = const(100)  # i16 dBm
R_NET_DROPS = const(101)  # u16

# Writable registers: (address, default raw value)
WRITABLE = ((80, 200), (81, 800), (82, 1800), (83, 30), )

# Bits inside bit-field registers
B_POWER = const(1)  # roles
B_FRIDGE = const(2)  # roles
B_ENTRANCE = const(4)  # roles
B_CONFIG_ERROR = const(1)  # status
B_SAFE_MODE = const(2)  # status
B_PERSIST_ERROR = const(4)  # status
B_VIRTUAL_CLOCK = const(8)  # status
B_NET_DOWN = const(16)  # status
B_FUEL_OPEN_LOOP = const(1)  # power_faults
B_FUEL_OVER_RANGE = const(2)  # power_faults
B_STARTER_SENSE = const(4)  # power_faults
B_BATTERY_SENSOR = const(8)  # power_faults
B_START_FAILED = const(16)  # power_faults
B_MAINS_SENSE = const(32)  # power_faults
B_FRIDGE_PROBE_MISSING = const(1)  # fridge_faults
B_FRIDGE_PROBE_CRC = const(2)  # fridge_faults
B_FRIDGE_PROBE_POWER_ON = const(4)  # fridge_faults
B_AMBIENT_PROBE_FAULT = const(8)  # fridge_faults
B_BEAM_A_BLOCKED = const(1)  # entrance_faults
B_BEAM_B_BLOCKED = const(2)  # entrance_faults

# Enum values
RESET_CAUSE_UNKNOWN = const(0)
RESET_CAUSE_POWER_ON = const(1)
RESET_CAUSE_HARD = const(2)
RESET_CAUSE_WATCHDOG = const(3)
RESET_CAUSE_DEEP_SLEEP = const(4)
RESET_CAUSE_SOFT = const(5)
GEN_STATE_STOPPED = const(0)
GEN_STATE_STARTING = const(1)
GEN_STATE_RUNNING = const(2)
GEN_STATE_START_FAILED = const(3)
GEN_STATE_COOLDOWN = const(4)
GEN_RUN_REASON_NONE = const(0)
GEN_RUN_REASON_MAINS_LOST = const(1)
GEN_RUN_REASON_TEST = const(2)
GEN_RUN_REASON_UNEXPECTED = const(3)
LAST_COMMAND_NONE = const(0)
LAST_COMMAND_ACCEPTED = const(1)
LAST_COMMAND_REFUSED_MAINS_ABSENT = const(2)
LAST_COMMAND_REFUSED_CARRYING_SITE = const(3)
LAST_COMMAND_START_FAILED = const(4)
LAST_COMMAND_STOPPED = const(5)
NET_STATE_NONE = const(0)
NET_STATE_DOWN = const(1)
NET_STATE_CONNECTING = const(2)
NET_STATE_UP = const(3)

# Coils
C_GEN_TEST_RUN = const(0)
C_OCCUPANCY_RESET = const(1)
C_FRIDGE_MINMAX_RESET = const(2)
C_ALARM_SILENCE = const(3)

# Discrete inputs
D_MAINS_PRESENT = const(0)
D_GEN_RUNNING = const(1)
D_RELAY_ON = const(2)
D_DOOR_OPEN = const(3)
D_FRIDGE_ALARM = const(4)
D_ANY_FAULT = const(5)
