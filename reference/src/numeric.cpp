#include "flashmla_ref/numeric.h"
