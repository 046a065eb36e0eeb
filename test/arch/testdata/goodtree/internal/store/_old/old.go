package misc

func init() {}
