package python

import _ "embed"

// MLflowBatch is the source of mlflow_batch.py, the batch scoring script of MLflow models
// deployed to a batch endpoint without a scoring script. The batch worker runs it like a
// user's script: init() loads the model named by BERTH_MLMODEL and BERTH_MLFLOW_MODEL_DIR,
// run(mini_batch) scores each .csv/.parquet file and returns a DataFrame with the columns
// row, prediction, file_name whose attrs["berth_sep"] is ",".
//
//go:embed mlflow_batch.py
var MLflowBatch string
