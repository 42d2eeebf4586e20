package pgsource_test

const childEnv = "PGSOURCE_TEST_CHILD"

func childMain() int { return 0 }
