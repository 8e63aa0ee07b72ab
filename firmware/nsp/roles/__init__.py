# The board's roles, chosen by config.json. build_roles() validates the role sections (nsp/fwconfig:
# bad fields get their safe default and one console line each) and builds one object per role name.
config_errors = []  # type: list[str]  # the lines from the last build_roles(): the node sets status bit config_error


def build_roles(names, image, cfg, store):
    import sys

    from nsp import fwconfig

    full, errors = fwconfig.validate(cfg)
    del fwconfig
    # its schema (~13 KB of heap on the unix port) is only needed at boot
    sys.modules.pop("nsp.fwconfig", None)
    import nsp

    if hasattr(nsp, "fwconfig"):
        delattr(nsp, "fwconfig")
    import gc

    gc.collect()  # free it before the role modules load: boot is the heap high-water mark
    del config_errors[:]
    for line in errors:
        config_errors.append(line)
        print(line)
    if store is not None:  # config.json decides how often ordinary changes reach the flash
        store.min_interval_ms = full["persist_interval_s"] * 1000
    roles = []  # type: list
    done = []  # type: list
    for name in names:
        if name in done or (name not in full["roles"] and name in ("power", "fridge", "entrance")):
            continue  # listed twice, or disabled by validation (a pin conflict): the error line says why
        done.append(name)
        if name == "power":
            from nsp.roles.power import PowerRole

            roles.append(PowerRole(image, full["power"], store))
        elif name == "fridge":
            from nsp.roles.fridge import FridgeRole

            roles.append(FridgeRole(image, full["fridge"], store))
        elif name == "entrance":
            from nsp.roles.entrance import EntranceRole

            roles.append(EntranceRole(image, full["entrance"], store))
        else:
            line = "config.json: roles: unknown role %r; fix: use power, fridge or entrance" % (name,)
            config_errors.append(line)
            print(line)
    return roles
