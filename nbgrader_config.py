"""nbgrader configuration of the course: solutions/ is the source, exercises/ the release.

Run the nbgrader commands from the repository root, e.g.

    nbgrader generate_assignment convolution --force

which reads solutions/convolution/convolution.ipynb and writes the student version to
exercises/convolution/convolution.ipynb (hidden tests and solutions removed);
`nbgrader generate_assignment "*" --force` regenerates all of them.
"""

from pathlib import Path

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

#: The autograded assignments, in the order of the course. nbgrader 0.9 keeps its list of
#: assignments in the gradebook; `generate_assignment` adds each one there when it first runs.
ASSIGNMENTS = ("convolution", "output_shapes", "backprop")

c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///" + str(Path(__file__).resolve().parent / "gradebook.db")
c.GenerateAssignment.create_assignment = True

# What replaces the code between BEGIN SOLUTION and END SOLUTION in the student version.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# nbgrader's own autograde (the command, and the formgrader's Autograde button) would run student
# code with the instructor's rights and record unverified scores: for this course it stops and
# says to run `course autograde`, which isolates every submission and writes verified scores.
try:
    from course_lib.grading.nbgrader_plugins import switch_off_plain_autograde
except ImportError:  # the course's package is not installed where this file is read
    pass
else:
    switch_off_plain_autograde()
c.Autograde.sanitize_preprocessors = ["course_lib.grading.nbgrader_plugins.IsolatedAutogradeOnly"]
# Generate Feedback (the command and the formgrader's button) writes the course's feedback page:
# results, misconceptions, the grader's scores and comments; never the hidden tests.
c.GenerateFeedback.preprocessors = [
    "course_lib.grading.nbgrader_plugins.CourseFeedback",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
