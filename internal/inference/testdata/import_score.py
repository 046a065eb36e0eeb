import not_a_real_package_xyz

def init():
    pass

def run(d):
    return d
